from benchmarks.foundation import main

main()
