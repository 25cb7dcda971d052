"""Returns: the return form, problem reports, and return and refund status.

One module a job:

- `policy`: knowledge_base/return_policy.yml read through a declared schema into `ReturnPolicy`
- `rules`: the policy evaluated, as pure functions (may this item go back? what fee?)
- `vocabulary`: the customer's typed answers read by phrase, then by meaning
- `slots`: what the form has collected, and which messages may answer it
- `form`: `validate_return_form`, deciding as soon as the policy can
- `questions`: the form's questions with their buttons
- `submit`: starting a return and submitting it to the shop
- `report`: damaged, wrong or missing items, and the report offered after an answer
- `replies`: the confirmation and the words for items and refunds
- `status`: where a return stands, by RMA or order number

Nothing is imported here, so that the knowledge base's loader can read the policy
(`actions.returns.policy`) without loading the actions.
"""
