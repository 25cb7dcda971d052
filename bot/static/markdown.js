// Bot and agent text as a safe subset of Markdown: bold, italics, inline code, lists, links and
// line breaks. Shared by the widget (bot/static/widget.js) and the consoles (handoff/static/).
// Needs the vendored markdown-it (bot/static/vendor/markdown-it.umd.min.js); defines
// window.HarborLaneMarkdown = { create(markdownit, options) -> render(text) -> DocumentFragment }.
//
// Why DOM nodes from tokens rather than md.render() into innerHTML: markdown-it with html:false
// does escape what it renders, but building the nodes ourselves means no HTML parser ever sees
// the text. Only the elements listed below can appear, every piece of text goes in as a text
// node, the only attributes ever set are href/target/rel (and start on <ol>), and a link is
// made only from an absolute http(s) or mailto URL. So HTML in a message shows as text, event
// handlers cannot exist, and a javascript: link stays plain text, whatever options or plugins
// markdown-it gets later. It also needs no 'unsafe-inline' or Trusted Types exception in the CSP.
// Customer text never comes here: what a customer types is shown exactly as typed.
(function () {
  "use strict";

  // markdown-it's rule names: everything else (headings, tables, images, raw HTML, entities,
  // code blocks...) stays off and shows as the characters that were written.
  const RULES = ["emphasis", "list", "link", "linkify", "newline", "backticks", "escape"];
  const BLOCKS = { paragraph_open: "p", bullet_list_open: "ul", ordered_list_open: "ol", list_item_open: "li" };
  const INLINES = { strong_open: "strong", em_open: "em" };
  const LINK_PROTOCOLS = new Set(["http:", "https:", "mailto:"]);

  /** The URL a link may point to, or null: absolute http(s) and mailto only. */
  function safeHref(value) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      const url = new URL(value.trim());
      return LINK_PROTOCOLS.has(url.protocol) ? url.href : null;
    } catch (_err) {
      return null; // relative or malformed: nothing to resolve it against safely
    }
  }

  function create(markdownit, options) {
    const opts = options || {};
    const md = markdownit("zero", { html: false, linkify: true, breaks: true, typographer: false });
    md.enable(RULES);
    // Bare URLs become links only with their scheme written out, as before ("example.com" and
    // e-mail addresses stay text); links that markdown-it would accept but we would not
    // (javascript:, data:, relative) are refused at parse time, so they read as plain text.
    md.linkify.set({ fuzzyLink: false, fuzzyEmail: false, fuzzyIP: false });
    md.validateLink = (url) => safeHref(url) !== null;

    function link(href) {
      const node = document.createElement("a");
      node.href = href;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
      if (opts.linkClass) node.className = opts.linkClass;
      return node;
    }

    function appendInline(parent, tokens) {
      const stack = [parent];
      for (const token of tokens) {
        const top = stack[stack.length - 1];
        if (token.type === "text") top.append(document.createTextNode(token.content));
        else if (token.type === "softbreak" || token.type === "hardbreak") top.append(document.createElement("br"));
        else if (token.type === "code_inline") {
          const code = document.createElement("code");
          code.textContent = token.content;
          top.append(code);
        } else if (token.nesting === 1) {
          let node = null;
          if (token.type === "link_open") {
            const href = safeHref(token.attrGet("href"));
            node = href ? link(href) : document.createElement("span");
          } else if (INLINES[token.type]) {
            node = document.createElement(INLINES[token.type]);
          }
          if (node) top.append(node);
          stack.push(node || top); // an unknown opener nests nothing, but its closer still pops
        } else if (token.nesting === -1) {
          if (stack.length > 1) stack.pop();
        } else if (token.content) {
          top.append(document.createTextNode(token.content));
        }
      }
    }

    /** The text as a fragment of elements and text nodes (never parsed as HTML). */
    function render(text) {
      const fragment = document.createDocumentFragment();
      const stack = [fragment];
      for (const token of md.parse(String(text), {})) {
        const top = stack[stack.length - 1];
        if (token.type === "inline") {
          appendInline(top, token.children || []);
        } else if (token.hidden) {
          // A tight list's paragraphs: their text goes straight into the <li>.
        } else if (token.nesting === 1) {
          const tag = BLOCKS[token.type];
          const node = tag ? document.createElement(tag) : null;
          if (node && tag === "ol") {
            const start = token.attrGet("start"); // set only when the list does not start at 1
            if (start !== null && Number.isInteger(Number(start))) node.start = Number(start);
          }
          if (node) top.append(node);
          stack.push(node || top);
        } else if (token.nesting === -1) {
          if (stack.length > 1) stack.pop();
        } else if (token.content) {
          top.append(document.createTextNode(token.content));
        }
      }
      return fragment;
    }

    return render;
  }

  window.HarborLaneMarkdown = { create };
})();
