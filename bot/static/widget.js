// Harbor Lane Supply chat widget: embed with ONE tag,
//   <script src="https://gateway.example/widget.js" data-gateway="https://gateway.example" defer></script>
// (data-gateway is optional; it defaults to the origin this file was loaded from).
// A shop whose customer is signed in adds data-identifier (the email on their orders) and
// data-identifier-hash (HMAC-SHA256 of it with SHOP_IDENTITY_SECRET, computed by the shop's
// back end): their orders then need no email (docs/security.md).
//
// It loads <gateway>/static/widget.css, the vendored Socket.IO client and markdown-it, and
// <gateway>/static/markdown.js itself, and speaks Rasa's socketio channel protocol
// (session_request / session_confirm / user_uttered / bot_uttered) plus the gateway's own events
// (channels, helpdesk_status, typing, link_request / link_code, link_claim / link_result).
//
// Safe under a strict Content-Security-Policy: no inline scripts, styles or handlers are created.
// Every piece of server or customer text goes into the page through textContent or text nodes,
// never through HTML parsing: bot and agent lines are Markdown turned into elements and text
// nodes by markdown.js (bold, italics, lists, http(s) links); what the customer typed is shown
// exactly as typed.
(function () {
  "use strict";

  // document.currentScript only exists while this file runs for the first time: read it now.
  const SCRIPT = document.currentScript;

  if (window.__harborLaneWidget) return; // included twice: the first copy wins
  window.__harborLaneWidget = true;

  const TITLE = "Harbor Lane Supply";
  const MAX_HISTORY = 200;
  const MAX_MESSAGE_CHARS = 2000;
  const TYPING_AFTER_SEND_MS = 15000;
  const TYPING_FROM_SERVER_MS = 30000;
  const LINK_REPLY_TIMEOUT_MS = 10000;
  const IMAGE_PATH = /\.(?:png|jpe?g|gif|webp|avif|svg)$/i;
  const URL_IN_TEXT = /\bhttps?:\/\/[^\s<>"']+/gi;
  const TELEGRAM_BOT = /^[A-Za-z0-9_]{3,64}$/;

  const STATUS_TEXT = {
    connecting: "Connecting…",
    reconnecting: "Reconnecting…",
    unavailable: "Chat is unavailable right now",
    bot: "Assistant",
    queued: "Waiting for a person…",
  };

  // ------------------------------------------------------------------ configuration

  function gatewayBase() {
    const fromAttr = SCRIPT && SCRIPT.getAttribute("data-gateway");
    let base = fromAttr && fromAttr.trim();
    if (!base && SCRIPT && SCRIPT.src) base = new URL(SCRIPT.src, location.href).origin;
    if (!base) base = location.origin;
    try {
      const url = new URL(base, location.href);
      return (url.origin + url.pathname).replace(/\/+$/, "");
    } catch (_err) {
      return location.origin;
    }
  }

  // The shop's signed-in customer, sent with every message (customData), checked by the gateway.
  function signedIdentity() {
    const identifier = SCRIPT && SCRIPT.getAttribute("data-identifier");
    const hash = SCRIPT && SCRIPT.getAttribute("data-identifier-hash");
    return identifier && hash ? { identifier: identifier, identifier_hash: hash } : {};
  }

  const GATEWAY = gatewayBase();
  const IDENTITY = signedIdentity();
  const GATEWAY_ORIGIN = new URL(GATEWAY + "/", location.href).origin;
  const KEY_SESSION = "hlw:v1:session:" + GATEWAY_ORIGIN;
  const KEY_HISTORY = "hlw:v1:history:" + GATEWAY_ORIGIN;
  const KEY_HELPDESK = "hlw:v1:helpdesk:" + GATEWAY_ORIGIN;

  // ------------------------------------------------------------------ storage (may be unavailable)

  function load(key) {
    try {
      const raw = window.localStorage.getItem(key);
      return raw === null ? null : JSON.parse(raw);
    } catch (_err) {
      return null;
    }
  }

  function save(key, value) {
    try {
      window.localStorage.setItem(key, JSON.stringify(value));
    } catch (_err) {
      // Private browsing or a full quota: the widget still works, it just forgets on reload.
    }
  }

  // ------------------------------------------------------------------ state

  const state = {
    socket: null,
    connected: false, // the socket is connected...
    confirmed: false, // ...and the server has confirmed the session on this connection
    sessionId: null,
    noticeHeldUntil: 0, // a rate limit's notice is not cleared by replies before then
    messages: [], // {author, text, buttons: [{title, payload}], chosen, attachment: {kind, url}}
    helpdesk: { mode: "bot", agent: null },
    phase: "connecting", // connecting | reconnecting | unavailable | ready
    open: false,
    typingTimer: null,
    link: { code: null, url: null, expiresAt: 0, waiting: false, expiryTimer: null, replyTimer: null },
    claimTimer: null,
    pendingLinkRequest: false,
    telegramBot: null, // the gateway's Telegram bot (its username) when Telegram is on
    renderMarkdown: null, // text -> DocumentFragment, once markdown.js and markdown-it have loaded
  };

  const ui = {};

  // ------------------------------------------------------------------ DOM helpers

  /** Builds an element; `text` becomes a text node; attributes with null/false are left out. */
  function el(tag, options, children) {
    const opts = options || {};
    const node = document.createElement(tag);
    if (opts.className) node.className = opts.className;
    if (opts.id) node.id = opts.id;
    if (opts.text !== undefined && opts.text !== null) node.textContent = String(opts.text);
    const attrs = opts.attrs || {};
    for (const name of Object.keys(attrs)) {
      const value = attrs[name];
      if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : String(value));
    }
    for (const child of children || []) {
      if (child !== null && child !== undefined && child !== false) node.append(child);
    }
    return node;
  }

  function svgIcon(pathData, className) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("aria-hidden", "true");
    svg.setAttribute("focusable", "false");
    svg.setAttribute("class", className);
    const path = document.createElementNS(NS, "path");
    path.setAttribute("d", pathData);
    svg.append(path);
    return svg;
  }

  /** An http(s) URL as a string, or null: nothing else (javascript:, data:...) becomes a link. */
  function safeUrl(value) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      const url = new URL(value.trim(), GATEWAY + "/");
      return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
    } catch (_err) {
      return null;
    }
  }

  function looksLikeUrl(value) {
    return typeof value === "string" && /^(?:https?:\/\/|\/)\S+$/i.test(value.trim());
  }

  function isImageUrl(href) {
    try {
      return IMAGE_PATH.test(new URL(href).pathname);
    } catch (_err) {
      return false;
    }
  }

  /** A bot or agent line: Markdown, as elements and text nodes (markdown.js); if that could not
      load, text with its http(s) URLs as links. A customer's line: text, exactly as typed. */
  function fillText(node, text, rich) {
    if (!rich) {
      node.textContent = text;
      return;
    }
    if (state.renderMarkdown) {
      try {
        node.append(state.renderMarkdown(text));
        return;
      } catch (_err) {
        node.replaceChildren(); // fall back to plain text with links below
      }
    }
    let last = 0;
    for (const match of text.matchAll(URL_IN_TEXT)) {
      let raw = match[0];
      const trailing = raw.match(/[).,;:!?\]]+$/); // "see https://x.y/z." keeps its full stop outside
      if (trailing) raw = raw.slice(0, raw.length - trailing[0].length);
      const href = safeUrl(raw);
      if (!href) continue;
      node.append(document.createTextNode(text.slice(last, match.index)));
      node.append(el("a", { className: "hlw-link", text: raw, attrs: { href, target: "_blank", rel: "noopener noreferrer" } }));
      last = match.index + raw.length;
    }
    node.append(document.createTextNode(text.slice(last)));
  }

  // ------------------------------------------------------------------ building the widget

  function build() {
    const root = el("div", { id: "hlw-root", className: "hlw-root", attrs: { hidden: true } });

    ui.launcher = el(
      "button",
      {
        id: "hlw-launcher",
        className: "hlw-launcher",
        attrs: { type: "button", "aria-label": "Chat with us", "aria-expanded": "false", "aria-controls": "hlw-panel", title: "Chat with us" },
      },
      [
        svgIcon("M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z", "hlw-launcher-icon"),
        (ui.badge = el("span", { className: "hlw-badge", attrs: { hidden: true, "aria-hidden": "true" } })),
      ],
    );

    ui.status = el("p", { id: "hlw-status", className: "hlw-status", text: STATUS_TEXT.connecting, attrs: { role: "status" } });
    ui.linkToggle = el("button", {
      id: "hlw-link-toggle",
      className: "hlw-header-button",
      text: "Continue on Telegram",
      // Shown once the gateway says it has a Telegram bot (the `channels` event).
      attrs: { type: "button", "aria-expanded": "false", "aria-controls": "hlw-link-panel", hidden: true },
    });
    ui.close = el("button", { className: "hlw-close", attrs: { type: "button", "aria-label": "Close chat", title: "Close chat" } }, [
      svgIcon("M6 6l12 12M18 6L6 18", "hlw-close-icon"),
    ]);
    const header = el("div", { className: "hlw-header" }, [
      el("div", { className: "hlw-heading" }, [el("h2", { id: "hlw-title", className: "hlw-title", text: TITLE }), ui.status]),
      el("div", { className: "hlw-header-actions" }, [ui.linkToggle, ui.close]),
    ]);

    ui.linkPanel = buildLinkPanel();

    ui.log = el("div", {
      id: "hlw-log",
      className: "hlw-log",
      attrs: { role: "log", "aria-live": "polite", "aria-label": "Conversation", tabindex: "0" },
    });
    ui.typing = el(
      "div",
      { id: "hlw-typing", className: "hlw-typing", attrs: { hidden: true } },
      [
        el("span", { className: "hlw-dot", attrs: { "aria-hidden": "true" } }),
        el("span", { className: "hlw-dot", attrs: { "aria-hidden": "true" } }),
        el("span", { className: "hlw-dot", attrs: { "aria-hidden": "true" } }),
        el("span", { className: "hlw-sr-only", text: "Typing…" }),
      ],
    );

    ui.notice = el("p", { id: "hlw-notice", className: "hlw-notice", attrs: { role: "alert", hidden: true } });

    ui.input = el("textarea", {
      id: "hlw-input",
      className: "hlw-input",
      attrs: { rows: "1", maxlength: String(MAX_MESSAGE_CHARS), placeholder: "Type your message…", autocomplete: "off" },
    });
    ui.send = el("button", { id: "hlw-send", className: "hlw-send", text: "Send", attrs: { type: "submit", disabled: true } });
    ui.composer = el("form", { className: "hlw-composer", attrs: { novalidate: true } }, [
      el("label", { className: "hlw-sr-only", text: "Message", attrs: { for: "hlw-input" } }),
      ui.input,
      ui.send,
    ]);

    ui.panel = el(
      "div",
      {
        id: "hlw-panel",
        className: "hlw-panel",
        attrs: { role: "dialog", "aria-label": "Chat with " + TITLE, hidden: true },
      },
      [header, ui.linkPanel, ui.log, ui.typing, ui.notice, ui.composer],
    );

    root.append(ui.panel, ui.launcher);
    ui.root = root;
    document.body.append(root);

    ui.launcher.addEventListener("click", () => (state.open ? closePanel() : openPanel()));
    ui.close.addEventListener("click", closePanel);
    ui.panel.addEventListener("keydown", (event) => {
      if (event.key === "Escape" && !event.isComposing) {
        event.preventDefault();
        closePanel();
      }
    });
    ui.composer.addEventListener("submit", (event) => {
      event.preventDefault();
      sendDraft();
    });
    ui.input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && !event.shiftKey && !event.isComposing && event.keyCode !== 229) {
        event.preventDefault();
        sendDraft();
      }
    });
    ui.input.addEventListener("input", autoGrow);
    ui.linkToggle.addEventListener("click", toggleLinkPanel);
  }

  function buildLinkPanel() {
    ui.linkState = el("p", { className: "hlw-link-state", attrs: { role: "status" } });
    ui.telegramLink = el("a", {
      id: "hlw-telegram-link",
      className: "hlw-button hlw-telegram-link",
      text: "Open Telegram",
      attrs: { target: "_blank", rel: "noopener noreferrer", hidden: true },
    });
    ui.linkIntro = el("p", { className: "hlw-link-intro" });
    ui.linkHint = el("p", { className: "hlw-link-hint" });
    ui.linkCode = el("code", { id: "hlw-link-code", className: "hlw-code", attrs: { "aria-label": "Your code" } });
    ui.linkExpiry = el("p", { className: "hlw-link-expiry" });
    ui.linkRefresh = el("button", { id: "hlw-link-refresh", className: "hlw-button hlw-button-secondary", text: "Get a new code", attrs: { type: "button", hidden: true } });
    ui.linkCodeBox = el("div", { className: "hlw-code-box", attrs: { hidden: true } }, [
      ui.telegramLink,
      ui.linkHint,
      ui.linkCode,
      ui.linkExpiry,
    ]);

    ui.claimInput = el("input", {
      id: "hlw-claim-input",
      className: "hlw-claim-input",
      attrs: { type: "text", autocomplete: "off", autocapitalize: "characters", spellcheck: "false", maxlength: "32" },
    });
    ui.claim = el("button", { id: "hlw-claim", className: "hlw-button", text: "Link", attrs: { type: "submit" } });
    ui.claimResult = el("p", { id: "hlw-claim-result", className: "hlw-claim-result", attrs: { role: "status" } });
    const claimForm = el("form", { className: "hlw-claim", attrs: { novalidate: true } }, [
      el("label", { className: "hlw-claim-label", text: "I have a code from Telegram", attrs: { for: "hlw-claim-input" } }),
      el("div", { className: "hlw-claim-row" }, [ui.claimInput, ui.claim]),
      ui.claimResult,
    ]);

    ui.linkRefresh.addEventListener("click", requestLinkCode);
    claimForm.addEventListener("submit", (event) => {
      event.preventDefault();
      claimCode();
    });

    return el(
      "section",
      { id: "hlw-link-panel", className: "hlw-link-panel", attrs: { hidden: true, "aria-label": "Continue on Telegram" } },
      [
        ui.linkIntro,
        ui.linkState,
        ui.linkCodeBox,
        ui.linkRefresh,
        claimForm,
      ],
    );
  }

  function autoGrow() {
    ui.input.style.height = "auto";
    ui.input.style.height = Math.min(ui.input.scrollHeight, 140) + "px";
  }

  // ------------------------------------------------------------------ opening and closing

  function openPanel() {
    state.open = true;
    ui.panel.hidden = false;
    ui.root.classList.add("hlw-is-open");
    ui.launcher.setAttribute("aria-expanded", "true");
    setUnread(false);
    scrollToEnd();
    ui.input.focus();
  }

  function closePanel() {
    state.open = false;
    ui.panel.hidden = true;
    ui.root.classList.remove("hlw-is-open");
    ui.launcher.setAttribute("aria-expanded", "false");
    ui.launcher.focus();
  }

  function setUnread(on) {
    ui.badge.hidden = !on;
    ui.launcher.setAttribute("aria-label", on ? "Chat with us (new message)" : "Chat with us");
  }

  // ------------------------------------------------------------------ messages

  function scrollToEnd() {
    ui.log.scrollTop = ui.log.scrollHeight;
  }

  function renderMessage(message) {
    const node = el("div", { className: "hlw-msg hlw-msg-" + message.author, attrs: { "data-author": message.author } });
    if (message.text) {
      const text = el("div", { className: "hlw-text" });
      fillText(text, message.text, message.author === "bot");
      node.append(text);
    }
    if (message.attachment) node.append(renderAttachment(message.attachment));
    if (message.buttons && message.buttons.length) {
      const group = el("div", { className: "hlw-quick-replies", attrs: { role: "group", "aria-label": "Suggested replies" } });
      message.buttons.forEach((button, index) => {
        const quick = el("button", {
          className: "hlw-quick-reply" + (message.chosen === index ? " hlw-quick-reply-chosen" : ""),
          text: button.title,
          attrs: { type: "button" },
        });
        quick.addEventListener("click", () => {
          if (quick.disabled || !isReady() || message !== lastMessage()) return;
          message.chosen = index;
          quick.classList.add("hlw-quick-reply-chosen");
          send(button.payload, button.title);
        });
        group.append(quick);
      });
      node.append(group);
    }
    return node;
  }

  function renderAttachment(attachment) {
    const link = el("a", { className: "hlw-attachment", attrs: { href: attachment.url, target: "_blank", rel: "noopener noreferrer" } });
    if (attachment.kind === "image") {
      link.append(el("img", { className: "hlw-image", attrs: { src: attachment.url, alt: "Image from the shop", loading: "lazy" } }));
    } else {
      link.textContent = attachment.url;
    }
    return link;
  }

  function lastMessage() {
    return state.messages[state.messages.length - 1];
  }

  function addMessage(message, { persist = true } = {}) {
    state.messages.push(message);
    ui.log.append(renderMessage(message));
    while (state.messages.length > MAX_HISTORY) {
      state.messages.shift();
      if (ui.log.firstElementChild) ui.log.firstElementChild.remove();
    }
    updateControls();
    scrollToEnd();
    if (persist) saveHistory();
  }

  function saveHistory() {
    save(KEY_HISTORY, state.messages.slice(-MAX_HISTORY));
  }

  function restoreHistory() {
    const stored = load(KEY_HISTORY);
    if (!Array.isArray(stored)) return;
    for (const item of stored.slice(-MAX_HISTORY)) {
      const message = sanitizeStored(item);
      if (message) {
        state.messages.push(message);
        ui.log.append(renderMessage(message));
      }
    }
    const helpdesk = load(KEY_HELPDESK);
    if (helpdesk && typeof helpdesk === "object") applyHelpdesk(helpdesk, false);
  }

  /** Stored history is data from localStorage: trust its shape no more than the server's. */
  function sanitizeStored(item) {
    if (!item || typeof item !== "object") return null;
    const author = item.author === "customer" ? "customer" : item.author === "bot" ? "bot" : null;
    if (!author) return null;
    const text = typeof item.text === "string" ? item.text : "";
    const buttons = normalizeButtons(item.buttons);
    let attachment = null;
    if (item.attachment && typeof item.attachment === "object") {
      const url = safeUrl(item.attachment.url);
      if (url) attachment = { kind: item.attachment.kind === "image" ? "image" : "link", url };
    }
    if (!text && !buttons.length && !attachment) return null;
    const message = { author, text, buttons, attachment };
    if (Number.isInteger(item.chosen)) message.chosen = item.chosen;
    return message;
  }

  function normalizeButtons(list) {
    if (!Array.isArray(list)) return [];
    const buttons = [];
    for (const item of list) {
      if (!item || typeof item !== "object") continue;
      const title = item.title === undefined || item.title === null ? "" : String(item.title);
      const payload = item.payload === undefined || item.payload === null ? title : String(item.payload);
      if (title || payload) buttons.push({ title: title || payload, payload: payload || title });
    }
    return buttons;
  }

  /** Rasa's attachment shapes: a URL string, {type: "image", payload: {src}}, or {url} / {src}. */
  function normalizeAttachment(value) {
    if (value === undefined || value === null) return { attachment: null, text: "" };
    if (typeof value === "string") {
      if (!looksLikeUrl(value)) return { attachment: null, text: value };
      const url = safeUrl(value);
      return url ? { attachment: { kind: isImageUrl(url) ? "image" : "link", url }, text: "" } : { attachment: null, text: value };
    }
    if (typeof value !== "object") return { attachment: null, text: String(value) };
    const payload = value.payload && typeof value.payload === "object" ? value.payload : {};
    const candidate = [payload.src, payload.url, value.src, value.url, typeof value.payload === "string" ? value.payload : null].find(
      (item) => typeof item === "string" && item.trim(),
    );
    const url = safeUrl(candidate);
    if (!url) return { attachment: null, text: "" };
    const image = value.type === "image" || isImageUrl(url);
    return { attachment: { kind: image ? "image" : "link", url }, text: "" };
  }

  // ------------------------------------------------------------------ status, controls, typing

  function isReady() {
    return state.connected && state.confirmed && !!state.sessionId;
  }

  function renderStatus() {
    let text;
    if (state.phase !== "ready") text = STATUS_TEXT[state.phase];
    else if (state.helpdesk.mode === "agent") text = state.helpdesk.agent ? "Chatting with " + state.helpdesk.agent : "Chatting with a person";
    else if (state.helpdesk.mode === "queued") text = STATUS_TEXT.queued;
    else text = STATUS_TEXT.bot;
    ui.status.textContent = text;
    ui.status.setAttribute("data-state", state.phase === "ready" ? state.helpdesk.mode : state.phase);
  }

  function updateControls() {
    const ready = isReady();
    ui.send.disabled = !ready;
    ui.claim.disabled = !ready || state.claimTimer !== null;
    ui.linkRefresh.disabled = !ready || state.link.waiting;
    const last = lastMessage();
    const lastNode = ui.log.lastElementChild;
    for (const button of ui.log.querySelectorAll(".hlw-quick-reply")) {
      const current = !!last && button.closest(".hlw-msg") === lastNode && last.chosen === undefined;
      button.disabled = !(ready && current);
    }
    renderStatus();
  }

  function setTyping(on, ms) {
    clearTimeout(state.typingTimer);
    state.typingTimer = null;
    ui.typing.hidden = !on;
    if (on) {
      state.typingTimer = setTimeout(() => setTyping(false), ms);
      scrollToEnd();
    }
  }

  function applyHelpdesk(data, persist) {
    const mode = data.mode === "agent" || data.mode === "queued" ? data.mode : "bot";
    let agent = mode === "agent" && typeof data.agent === "string" && data.agent.trim() ? data.agent.trim() : null;
    // A status repeated on reconnect may leave the name out: keep the one already known.
    if (mode === "agent" && !agent && state.helpdesk.mode === "agent") agent = state.helpdesk.agent;
    state.helpdesk = { mode, agent };
    if (persist) save(KEY_HELPDESK, state.helpdesk);
    renderStatus();
  }

  /** A problem the server reported (the gateway's `error` event), shown until the next line. */
  function setNotice(text) {
    ui.notice.textContent = text || "";
    ui.notice.hidden = !text;
  }

  // ------------------------------------------------------------------ sending

  function sendDraft() {
    const text = ui.input.value.trim();
    if (!text || !isReady()) return; // while disconnected the draft simply stays in the box
    ui.input.value = "";
    autoGrow();
    send(text, text);
    ui.input.focus();
  }

  function send(message, shown) {
    setNotice("");
    addMessage({ author: "customer", text: shown, buttons: [], attachment: null });
    state.socket.emit("user_uttered", { message, session_id: state.sessionId, customData: IDENTITY });
    setTyping(true, TYPING_AFTER_SEND_MS);
  }

  // ------------------------------------------------------------------ Telegram link

  /** The gateway's `channels` event: {telegram: "<bot username>"} when Telegram is on, else
      {telegram: null}. Off, there is no "Continue on Telegram"; on, the panel names the bot. */
  function onChannels(data) {
    const name = data && typeof data.telegram === "string" ? data.telegram.trim().replace(/^@/, "") : "";
    state.telegramBot = TELEGRAM_BOT.test(name) ? name : null;
    renderTelegram();
  }

  function renderTelegram() {
    const bot = state.telegramBot;
    ui.linkToggle.hidden = !bot;
    if (!bot) {
      ui.linkPanel.hidden = true;
      ui.linkToggle.setAttribute("aria-expanded", "false");
      return;
    }
    const handle = "@" + bot;
    ui.linkIntro.textContent = "Carry on this conversation in Telegram with " + handle + ": everything said here comes along.";
    ui.telegramLink.textContent = "Open " + handle + " in Telegram";
    ui.linkHint.textContent = "Or send this code to " + handle + " in Telegram:";
  }

  /** The deep link that opens the bot and sends it `/start <code>`: the gateway's, or made here. */
  function telegramUrl(data, code) {
    const given = safeUrl(data.telegram_url);
    if (given) return given;
    return state.telegramBot ? "https://t.me/" + state.telegramBot + "?start=" + encodeURIComponent(code) : null;
  }

  function toggleLinkPanel() {
    const show = ui.linkPanel.hidden;
    ui.linkPanel.hidden = !show;
    ui.linkToggle.setAttribute("aria-expanded", String(show));
    if (!show) return;
    if (!state.link.code || Date.now() >= state.link.expiresAt) requestLinkCode();
  }

  function requestLinkCode() {
    ui.linkRefresh.hidden = true;
    ui.linkCodeBox.hidden = true;
    if (!isReady()) {
      state.pendingLinkRequest = true; // sent as soon as the session is confirmed
      ui.linkState.textContent = "Waiting for the connection…";
      return;
    }
    state.pendingLinkRequest = false;
    state.link.waiting = true;
    ui.linkState.textContent = "Getting a code…";
    clearTimeout(state.link.replyTimer);
    state.link.replyTimer = setTimeout(() => {
      state.link.waiting = false;
      ui.linkState.textContent = "Could not get a code. Please try again.";
      ui.linkRefresh.hidden = false;
      updateControls();
    }, LINK_REPLY_TIMEOUT_MS);
    state.socket.emit("link_request", {});
    updateControls();
  }

  function onLinkCode(data) {
    clearTimeout(state.link.replyTimer);
    clearTimeout(state.link.expiryTimer);
    state.link.waiting = false;
    const code = data && (typeof data.code === "string" || typeof data.code === "number") ? String(data.code) : "";
    if (!code) {
      const error = data && typeof data.error === "string" && data.error ? data.error : "Could not get a code. Please try again.";
      state.link.code = null;
      ui.linkState.textContent = error;
      ui.linkCodeBox.hidden = true;
      ui.linkRefresh.hidden = false;
      updateControls();
      return;
    }
    const seconds = Number(data.expires_in) > 0 ? Number(data.expires_in) : 600;
    const minutes = Math.max(1, Math.round(seconds / 60));
    state.link.code = code;
    state.link.url = telegramUrl(data, code);
    state.link.expiresAt = Date.now() + seconds * 1000;

    ui.linkState.textContent = "";
    ui.linkCode.textContent = code;
    ui.linkCode.classList.remove("hlw-code-expired");
    ui.linkExpiry.textContent = "valid for " + minutes + (minutes === 1 ? " minute" : " minutes");
    if (state.link.url) {
      ui.telegramLink.href = state.link.url;
      ui.telegramLink.hidden = false;
    } else {
      ui.telegramLink.removeAttribute("href");
      ui.telegramLink.hidden = true;
    }
    ui.linkCodeBox.hidden = false;
    ui.linkRefresh.hidden = true;
    state.link.expiryTimer = setTimeout(() => {
      ui.linkCode.classList.add("hlw-code-expired");
      ui.linkExpiry.textContent = "This code has expired.";
      ui.telegramLink.hidden = true;
      ui.linkRefresh.hidden = false;
      state.link.code = null;
    }, seconds * 1000);
    updateControls();
  }

  function claimCode() {
    const code = ui.claimInput.value.replace(/\s+/g, "").toUpperCase();
    ui.claimResult.classList.remove("hlw-claim-ok", "hlw-claim-error");
    if (!code) {
      ui.claimResult.textContent = "Enter the code Telegram gave you.";
      ui.claimResult.classList.add("hlw-claim-error");
      ui.claimInput.focus();
      return;
    }
    if (!isReady()) return;
    ui.claimResult.textContent = "Linking…";
    state.claimTimer = setTimeout(() => {
      state.claimTimer = null;
      ui.claimResult.textContent = "No answer from the server. Please try again.";
      ui.claimResult.classList.add("hlw-claim-error");
      updateControls();
    }, LINK_REPLY_TIMEOUT_MS);
    state.socket.emit("link_claim", { code });
    updateControls();
  }

  function onLinkResult(data) {
    clearTimeout(state.claimTimer);
    state.claimTimer = null;
    ui.claimResult.classList.remove("hlw-claim-ok", "hlw-claim-error");
    if (data && data.ok === true) {
      ui.claimResult.textContent = "Linked: this chat and Telegram are now one conversation";
      ui.claimResult.classList.add("hlw-claim-ok");
      ui.claimInput.value = "";
    } else {
      const error = data && typeof data.error === "string" && data.error ? data.error : "That code did not work.";
      ui.claimResult.textContent = error;
      ui.claimResult.classList.add("hlw-claim-error");
    }
    updateControls();
  }

  // ------------------------------------------------------------------ the socket

  function onBotUttered(data) {
    if (data === null || data === undefined) return;
    const body = typeof data === "string" ? { text: data } : data;
    if (typeof body !== "object") return;
    let text = typeof body.text === "string" ? body.text : typeof body.text === "number" ? String(body.text) : "";
    const buttons = normalizeButtons(Array.isArray(body.quick_replies) ? body.quick_replies : body.buttons);
    const extra = normalizeAttachment(body.attachment);
    if (extra.text) text = text ? text + "\n" + extra.text : extra.text;
    setTyping(false);
    if (!text && !buttons.length && !extra.attachment) return;
    if (Date.now() >= state.noticeHeldUntil) setNotice(""); // a wait notice stays its time
    addMessage({ author: "bot", text, buttons, attachment: extra.attachment });
    if (!state.open) setUnread(true);
  }

  function onSessionConfirm(data) {
    let id = data;
    if (data && typeof data === "object") id = data.session_id;
    if (typeof id === "number") id = String(id);
    if (typeof id !== "string" || !id) return;
    state.sessionId = id;
    state.confirmed = true;
    state.phase = "ready";
    save(KEY_SESSION, id);
    updateControls();
    if (state.pendingLinkRequest && !ui.linkPanel.hidden) requestLinkCode();
  }

  function connect(io) {
    const socket = io(GATEWAY_ORIGIN, {
      path: "/socket.io/",
      reconnectionDelayMax: 10000,
      withCredentials: false,
      // A websocket first: one connection, which whichever gateway a load balancer picks
      // can hold, where polling's requests must all reach the gateway holding the session
      // (a widget on the shop's own site sends no affinity cookie). Polling only where a
      // websocket cannot be opened.
      transports: ["websocket", "polling"],
      tryAllTransports: true,
    });
    state.socket = socket;

    socket.on("connect", () => {
      state.connected = true;
      state.confirmed = false;
      state.phase = "connecting";
      updateControls();
      const stored = load(KEY_SESSION);
      const id = typeof stored === "string" && stored ? stored : state.sessionId;
      socket.emit("session_request", { session_id: id || null });
    });

    socket.on("disconnect", (reason) => {
      state.connected = false;
      state.confirmed = false;
      state.phase = "reconnecting";
      setTyping(false);
      updateControls();
      // The client reconnects by itself, except when the server closed the connection.
      if (reason === "io server disconnect") setTimeout(() => socket.connect(), 3000);
    });

    socket.on("connect_error", () => {
      if (!state.connected) {
        state.phase = state.sessionId || state.messages.length ? "reconnecting" : "connecting";
        updateControls();
      }
    });

    socket.on("session_confirm", onSessionConfirm);
    socket.on("channels", (data) => {
      if (data && typeof data === "object") onChannels(data);
    });
    socket.on("bot_uttered", onBotUttered);
    socket.on("helpdesk_status", (data) => {
      if (data && typeof data === "object") applyHelpdesk(data, true);
    });
    socket.on("typing", (data) => {
      setTyping(!!(data && data.on === true), TYPING_FROM_SERVER_MS);
    });
    socket.on("error", (data) => {
      const detail = data && typeof data.message === "string" && data.message ? data.message : "please try again";
      setTyping(false);
      setNotice("Sorry, that did not go through: " + detail);
    });
    socket.on("rate_limited", onRateLimited);
    socket.on("link_code", onLinkCode);
    socket.on("link_result", onLinkResult);
  }

  /** The gateway's `rate_limited` event: the message was not taken (not stored either). Its
      line leaves the conversation, its text goes back in the box, and the notice says how
      long to wait. */
  function onRateLimited(data) {
    if (!data || typeof data !== "object") return;
    setTyping(false);
    const text = typeof data.text === "string" ? data.text : "";
    for (let index = state.messages.length - 1; text && index >= 0; index -= 1) {
      const message = state.messages[index];
      if (message.author === "customer" && message.text === text) {
        state.messages.splice(index, 1);
        const line = ui.log.children[index];
        if (line) line.remove();
        saveHistory();
        if (!ui.input.value.trim()) {
          ui.input.value = text;
          autoGrow();
        }
        break;
      }
    }
    const notice = typeof data.message === "string" && data.message ? data.message : "Please wait a moment and send that again.";
    const seconds = typeof data.retry_after === "number" && data.retry_after > 0 ? Math.min(data.retry_after, 120) : 2;
    setNotice(notice);
    state.noticeHeldUntil = Date.now() + seconds * 1000;
    updateControls();
  }

  /** Loads one of the gateway's scripts and resolves with the global it defines (null if it did
      not load), without leaving that global in the host page: a host page with its own (maybe
      other-version) `io` or `markdownit` gets it back. */
  function loadScript(path, name) {
    return new Promise((resolve) => {
      const hadPrevious = Object.prototype.hasOwnProperty.call(window, name);
      const previous = window[name];
      const tag = document.createElement("script");
      tag.src = GATEWAY + path;
      tag.async = true;
      tag.addEventListener("load", () => {
        const ours = window[name];
        if (hadPrevious) window[name] = previous;
        else delete window[name];
        resolve(ours === undefined ? null : ours);
      });
      tag.addEventListener("error", () => resolve(null));
      document.head.append(tag);
    });
  }

  /** The Markdown renderer for bot and agent lines, or null: then they show as text with links. */
  async function loadMarkdown() {
    const [markdownit, library] = await Promise.all([
      loadScript("/static/vendor/markdown-it.umd.min.js", "markdownit"),
      loadScript("/static/markdown.js", "HarborLaneMarkdown"),
    ]);
    if (typeof markdownit !== "function" || !library || typeof library.create !== "function") return null;
    try {
      return library.create(markdownit, { linkClass: "hlw-link" });
    } catch (_err) {
      return null;
    }
  }

  function unavailable() {
    state.phase = "unavailable";
    updateControls();
  }

  function loadStyles(onDone) {
    const link = document.createElement("link");
    link.rel = "stylesheet";
    link.href = GATEWAY + "/static/widget.css";
    let done = false;
    const finish = () => {
      if (done) return;
      done = true;
      onDone();
    };
    link.addEventListener("load", finish);
    link.addEventListener("error", finish);
    setTimeout(finish, 3000); // never keep the launcher hidden for a slow stylesheet
    document.head.append(link);
  }

  // ------------------------------------------------------------------ start

  function start() {
    build();
    updateControls();
    loadStyles(() => {
      ui.root.hidden = false;
    });
    const socketIo = loadScript("/static/vendor/socket.io.min.js", "io");
    // The history is drawn once the renderer is there, and before anything new arrives.
    loadMarkdown().then((render) => {
      state.renderMarkdown = render;
      restoreHistory();
      updateControls();
      return socketIo;
    }).then((io) => (typeof io === "function" ? connect(io) : unavailable()));
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start, { once: true });
  else start();
})();
