// Agent console of the helpdesk: the login page and the console page share this file.
// Every piece of server text goes into the page through textContent or text nodes, never
// through HTML parsing: customers can write anything. Bot and agent lines are Markdown, built
// into elements and text nodes by messageText (console.js); customer lines stay text.
"use strict";

const LOGIN_PAGE = "/agent/login";
const AGENT_PAGE = "/agent";
const QUEUE_POLL_MS = 30000;
const RECONNECT_MIN_MS = 1000;
const RECONNECT_MAX_MS = 30000;
const HIGH_FRUSTRATION = 0.5;
const AUTHORS = new Set(["customer", "bot", "agent", "system"]);

const state = {
  me: null,
  tickets: [],
  openTicketId: null,
  ticket: null,
  messageIds: new Set(),
  noteIds: new Set(),
  drafts: new Map(),
  queueLoading: false,
  queueStale: false,
  queueError: null,
  detailRequest: 0,
  busy: false,
  sending: false,
  noting: false,
  socket: null,
  reconnectDelay: RECONNECT_MIN_MS,
  reconnectTimer: null,
  leaving: false,
};

// ---------------------------------------------------------------- small helpers

/** Builds an element; `text` becomes a text node, children may be nodes or strings (text). */
function sameId(a, b) {
  return a !== null && a !== undefined && b !== null && b !== undefined && String(a) === String(b);
}

const ACRONYMS = new Set(["id", "vip", "nlu", "sla", "csat", "url"]);

function humanize(key) {
  const words = String(key)
    .split("_")
    .map((word) => (ACRONYMS.has(word.toLowerCase()) ? word.toUpperCase() : word))
    .join(" ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

function pad2(number) {
  return String(number).padStart(2, "0");
}

/** mm:ss, minutes not capped at 59. */
function formatClock(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  return `${pad2(Math.floor(seconds / 60))}:${pad2(seconds % 60)}`;
}

function formatWaiting(totalSeconds) {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${pad2(seconds % 60)}s`;
  return `${Math.floor(seconds / 3600)}h ${pad2(Math.floor((seconds % 3600) / 60))}m`;
}

function formatPercent(value) {
  return typeof value === "number" && Number.isFinite(value) ? `${Math.round(value * 100)}%` : "";
}

function formatScore(value) {
  return typeof value === "number" && Number.isFinite(value) ? value.toFixed(2) : String(value);
}

/** Text for a value of unknown shape: primitives as they are, anything else as JSON. */
function formatValue(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value) && value.every((item) => !isPlainObject(item) && !Array.isArray(item))) {
    return value.map(formatValue).join(", ");
  }
  if (Array.isArray(value)) return value.map(summarizeObject).join(", ");
  return JSON.stringify(value);
}

/** An order's items and the like: their name when they have one. */
function summarizeObject(value) {
  if (!isPlainObject(value)) return formatValue(value);
  for (const key of ["name", "title", "number", "id"]) {
    const field = value[key];
    if (typeof field === "string" || typeof field === "number") return String(field);
  }
  return JSON.stringify(value);
}

function priorityClass(priority) {
  return /^P[1-4]$/.test(priority) ? priority.toLowerCase() : "p-none";
}

function customerLabel(customer) {
  if (!isPlainObject(customer)) return "Customer";
  return customer.name || customer.email || (customer.id !== undefined && customer.id !== null ? `Customer #${customer.id}` : "Customer");
}

function agentLabel(agent) {
  if (typeof agent === "string") return agent;
  if (!isPlainObject(agent)) return "Agent";
  return agent.name || agent.email || "Agent";
}

function isMine(ticket) {
  return Boolean(ticket && isPlainObject(ticket.assigned_agent) && state.me && sameId(ticket.assigned_agent.id, state.me.id));
}

function holdsOpenTicket() {
  return Boolean(state.ticket && state.ticket.status === "assigned" && isMine(state.ticket));
}

function isTypingTarget(target) {
  return target instanceof Element && Boolean(target.closest("input, textarea, select, [contenteditable]:not([contenteditable='false'])"));
}

// ---------------------------------------------------------------- the API

function redirectToLogin() {
  state.leaving = true;
  if (location.pathname !== LOGIN_PAGE) location.assign(LOGIN_PAGE);
}

/** Calls the JSON API; throws an Error carrying the server's message on anything but 2xx. */
async function api(method, path, body) {
  const [response, data] = await sendJson(method, path, body);
  // A failed login is a 401 too: that one is an answer for the form, not a lost session.
  if (response.status === 401 && path !== "/auth/login") {
    redirectToLogin();
    throw new Error(errorText(data, "Your session has ended. Please sign in again."));
  }
  if (!response.ok) throw new Error(errorText(data, `The request failed (HTTP ${response.status}).`));
  return data;
}

// ---------------------------------------------------------------- login page

function initLoginPage() {
  $("login").addEventListener("submit", onLoginSubmit);
}

async function onLoginSubmit(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const errorBox = $("login-error");
  const button = form.querySelector("button[type='submit']");
  const email = form.elements.namedItem("email").value.trim();
  const password = form.elements.namedItem("password").value;
  errorBox.textContent = "";
  if (!email || !password) {
    errorBox.textContent = "Enter your email and password.";
    return;
  }
  button.disabled = true;
  try {
    const me = await api("POST", "/auth/login", { email, password });
    // Back to the console that sent here (only our own pages), else the one the role uses.
    const next = new URLSearchParams(location.search).get("next");
    const home = me && me.role === "trainer" ? "/trainer" : AGENT_PAGE;
    location.assign(["/agent", "/trainer"].includes(next) ? next : home);
  } catch (error) {
    errorBox.textContent = error.message;
    form.elements.namedItem("password").select();
    button.disabled = false;
  }
}

// ---------------------------------------------------------------- console page: start

async function initAgentPage() {
  bindAgentControls();
  setConnection("connecting");
  try {
    state.me = await api("GET", "/auth/me");
  } catch (error) {
    showError(error.message);
    return;
  }
  $("me").textContent = agentLabel(state.me);
  await refreshQueue();
  connectSocket();
  setInterval(tick, 1000);
  setInterval(refreshQueue, QUEUE_POLL_MS);
  const fromHash = ticketIdFromHash();
  if (fromHash !== null) openTicket(fromHash);
}

function bindAgentControls() {
  $("logout").addEventListener("click", logout);
  $("queue").addEventListener("click", onQueueClick);
  $("queue").addEventListener("keydown", onQueueKeydown);
  $("claim").addEventListener("click", () => ticketAction("claim"));
  $("handback").addEventListener("click", () => ticketAction("handback"));
  $("close").addEventListener("click", () => ticketAction("close"));
  $("reply-form").addEventListener("submit", sendReply);
  $("reply-text").addEventListener("keydown", onReplyKeydown);
  $("note-form").addEventListener("submit", addNote);
  $("note-text").addEventListener("keydown", onNoteKeydown);
  document.addEventListener("keydown", onDocumentKeydown);
}

function ticketIdFromHash() {
  const match = /^#ticket-(\d+)$/.exec(location.hash);
  return match ? Number(match[1]) : null;
}

async function logout() {
  state.leaving = true;
  if (state.socket) state.socket.close();
  try {
    await api("POST", "/auth/logout");
  } catch {
    // Going to the login page is right whatever the server answered.
  }
  location.assign(LOGIN_PAGE);
}

function showError(message) {
  $("error").textContent = message;
}

// ---------------------------------------------------------------- queue

/** Fetches the queue; calls made while one is in flight fold into one more fetch after it. */
async function refreshQueue() {
  if (state.leaving) return;
  if (state.queueLoading) {
    state.queueStale = true;
    return;
  }
  state.queueLoading = true;
  try {
    do {
      state.queueStale = false;
      const tickets = await api("GET", "/tickets");
      state.tickets = Array.isArray(tickets) ? tickets.filter(isPlainObject) : [];
      renderQueue();
    } while (state.queueStale);
    // A failed poll's error goes away once the queue loads again (other errors stay).
    if (state.queueError !== null && $("error").textContent === state.queueError) clearError();
    state.queueError = null;
  } catch (error) {
    if (!state.leaving) {
      state.queueError = error.message;
      showError(error.message);
    }
  } finally {
    state.queueLoading = false;
  }
}

function queueItems() {
  return Array.from($("queue").querySelectorAll("li.ticket"));
}

function findQueueItem(ticketId) {
  return queueItems().find((item) => sameId(item.dataset.ticketId, ticketId)) || null;
}

function renderQueue() {
  const list = $("queue");
  const focused = document.activeElement;
  const hadFocus = list.contains(focused);
  const focusedId = focused && focused.dataset ? focused.dataset.ticketId : undefined;

  const items = state.tickets.map(renderQueueItem);
  if (items.length === 0) items.push(el("li", { className: "empty", text: "No one is waiting" }));
  list.replaceChildren(...items);
  $("queue-count").textContent = String(state.tickets.length);

  // Redrawing must not throw a keyboard user out of the queue.
  if (hadFocus) (findQueueItem(focusedId) || queueItems()[0] || list).focus();
  tick();
}

function renderQueueItem(ticket) {
  const priority = priorityClass(ticket.priority);
  const item = el("li", {
    className: `ticket ${priority}`,
    attrs: { "data-ticket-id": ticket.id, "data-status": ticket.status, tabindex: 0 },
  });
  item.classList.toggle("vip", ticket.vip === true);
  item.classList.toggle("mine", isMine(ticket));
  item.classList.toggle("assigned", ticket.status === "assigned");
  markItemSelected(item, sameId(ticket.id, state.openTicketId));

  const lastMessage = typeof ticket.last_customer_message === "string" ? ticket.last_customer_message : "";
  const lastLine = el("div", { className: "last-message", text: lastMessage || "(no message yet)" });
  if (lastMessage) lastLine.title = lastMessage;
  else lastLine.classList.add("muted");

  item.append(
    el("div", { className: "ticket-line ticket-top" }, [
      el("span", { className: `priority ${priority}`, text: ticket.priority || "P?" }),
      ticket.vip === true ? el("span", { className: "badge vip", text: "VIP" }) : null,
      el("span", { className: "reason", text: ticket.reason || "", attrs: { title: ticket.reason } }),
      slaElement(ticket.sla),
    ]),
    el("div", { className: "ticket-line" }, [
      el("span", { className: "customer", text: customerLabel(ticket.customer) }),
      el("span", { className: "channel", text: ticket.channel || "" }),
    ]),
    lastLine,
    el("div", { className: "ticket-line ticket-bottom" }, [
      waitingElement(ticket),
      el("span", { className: "holder", text: holderText(ticket) }),
    ]),
  );
  if (Array.isArray(ticket.cues) && ticket.cues.length > 0) item.append(cueList(ticket.cues));
  return item;
}

function markItemSelected(item, selected) {
  item.classList.toggle("selected", selected);
  if (selected) item.setAttribute("aria-current", "true");
  else item.removeAttribute("aria-current");
}

function markSelectedInQueue() {
  for (const item of queueItems()) markItemSelected(item, sameId(item.dataset.ticketId, state.openTicketId));
}

function holderText(ticket) {
  if (isPlainObject(ticket.assigned_agent)) {
    return isMine(ticket) ? "held by you" : `held by ${agentLabel(ticket.assigned_agent)}`;
  }
  if (ticket.status === "queued") {
    return typeof ticket.position === "number" ? `queued #${ticket.position}` : "queued";
  }
  return ticket.status || "";
}

function cueList(cues) {
  return el("ul", { className: "cues" }, cues.map((cue) => el("li", { text: formatValue(cue) })));
}

function slaElement(sla) {
  const node = el("span", { className: "sla" });
  setSlaData(node, sla, false);
  return node;
}

/** `stopped`: the ticket is resolved, so its clock no longer runs. */
function setSlaData(node, sla, stopped) {
  const data = isPlainObject(sla) ? sla : {};
  setData(node, "dueAt", data.due_at);
  setData(node, "respondedAt", data.responded_at);
  setData(node, "breached", data.breached === true ? "true" : null);
  setData(node, "stopped", stopped ? "true" : null);
}

function setData(node, key, value) {
  if (typeof value === "string" && value !== "") node.dataset[key] = value;
  else delete node.dataset[key];
}

function waitingElement(ticket) {
  const node = el("span", { className: "waiting" });
  setWaitingData(node, ticket);
  return node;
}

function setWaitingData(node, ticket) {
  let since = parseTime(ticket.created_at);
  if (Number.isNaN(since) && typeof ticket.waiting_seconds === "number") {
    since = Date.now() - ticket.waiting_seconds * 1000;
  }
  if (ticket.status === "resolved" || Number.isNaN(since)) delete node.dataset.since;
  else node.dataset.since = String(since);
}

/** Every second: the SLA clocks and waiting times, from the client's clock. */
function tick() {
  const now = Date.now();
  for (const node of document.querySelectorAll(".sla")) updateSla(node, now);
  for (const node of document.querySelectorAll(".waiting")) updateWaiting(node, now);
}

function updateSla(node, now) {
  const breached = node.dataset.breached === "true";
  if (node.dataset.respondedAt) {
    node.textContent = "answered";
    node.classList.add("answered");
    node.classList.toggle("breached", breached);
    return;
  }
  node.classList.remove("answered");
  if (node.dataset.stopped) {
    node.textContent = breached ? "missed" : "";
    node.classList.toggle("breached", breached);
    return;
  }
  const due = parseTime(node.dataset.dueAt);
  if (Number.isNaN(due)) {
    node.textContent = "";
    node.classList.remove("breached");
    return;
  }
  const left = due - now;
  const overdue = left < 0 || breached;
  node.textContent = overdue ? `overdue ${formatClock(Math.max(0, -left) / 1000)}` : `${formatClock(left / 1000)} left`;
  node.classList.toggle("breached", overdue);
}

function updateWaiting(node, now) {
  const since = Number(node.dataset.since);
  node.textContent = node.dataset.since && Number.isFinite(since) ? `waiting ${formatWaiting((now - since) / 1000)}` : "";
}

function onQueueClick(event) {
  const item = event.target.closest("li.ticket");
  if (item) openTicket(Number(item.dataset.ticketId));
}

function onQueueKeydown(event) {
  if (event.ctrlKey || event.metaKey || event.altKey) return;
  const items = queueItems();
  const current = event.target.closest("li.ticket");
  const index = current ? items.indexOf(current) : -1;
  let target = null;
  switch (event.key) {
    case "ArrowDown":
    case "j":
      target = items[Math.min(index + 1, items.length - 1)];
      break;
    case "ArrowUp":
    case "k":
      target = items[Math.max(index - 1, 0)];
      break;
    case "Home":
      target = items[0];
      break;
    case "End":
      target = items[items.length - 1];
      break;
    case "Enter":
    case " ":
      if (!current) return;
      event.preventDefault();
      openTicket(Number(current.dataset.ticketId));
      return;
    default:
      return;
  }
  event.preventDefault();
  if (target) target.focus();
}

function focusQueue() {
  const list = $("queue");
  const item = findQueueItem(state.openTicketId) || queueItems()[0];
  (item || list).focus();
}

function updateQueueLastMessage(ticketId, text) {
  const ticket = state.tickets.find((candidate) => sameId(candidate.id, ticketId));
  if (ticket) ticket.last_customer_message = text;
  const line = findQueueItem(ticketId)?.querySelector(".last-message");
  if (!line) return;
  line.textContent = text;
  line.title = text;
  line.classList.remove("muted");
}

// ---------------------------------------------------------------- ticket view

async function openTicket(id) {
  if (!Number.isInteger(id)) return;
  if (!sameId(id, state.openTicketId)) {
    saveDraft();
    state.openTicketId = id;
    state.ticket = null;
    resetTicketView(id);
    restoreDraft();
  }
  markSelectedInQueue();
  history.replaceState(null, "", `#ticket-${id}`);
  await loadOpenTicket();
}

function saveDraft() {
  if (state.openTicketId === null) return;
  state.drafts.set(state.openTicketId, { reply: $("reply-text").value, note: $("note-text").value });
}

function restoreDraft() {
  const draft = state.drafts.get(state.openTicketId) || { reply: "", note: "" };
  $("reply-text").value = draft.reply;
  $("note-text").value = draft.note;
}

function resetTicketView(id) {
  state.messageIds = new Set();
  state.noteIds = new Set();
  clearError();
  $("no-ticket").hidden = true;
  $("ticket").hidden = false;
  $("ticket-title").textContent = `Ticket #${id}`;
  for (const key of ["ticket-priority", "ticket-status", "ticket-customer", "ticket-channel", "ticket-holder", "ticket-csat"]) {
    $(key).textContent = "";
  }
  $("ticket-vip").hidden = true;
  setSlaData($("ticket-sla"), null, false);
  delete $("ticket-waiting").dataset.since;
  $("transcript").replaceChildren();
  $("notes").replaceChildren();
  $("events").replaceChildren();
  $("events-count").textContent = "";
  $("context-body").replaceChildren(el("p", { className: "muted", text: "Loading…" }));
  renderControls();
  tick();
}

/** Fetches the open ticket's detail and merges it into the view (transcript and notes keep their lines). */
async function loadOpenTicket() {
  const id = state.openTicketId;
  if (id === null || state.leaving) return;
  // Only the latest request may draw: an older answer would undo a claim shown meanwhile.
  const request = ++state.detailRequest;
  try {
    const detail = await api("GET", `/tickets/${id}`);
    if (request !== state.detailRequest || !sameId(id, state.openTicketId) || !isPlainObject(detail)) return;
    renderTicket(detail);
  } catch (error) {
    if (request === state.detailRequest && sameId(id, state.openTicketId)) showError(error.message);
  }
}

function renderTicket(detail) {
  state.ticket = detail;
  renderTicketHeader();
  renderControls();
  renderContext(detail.context);
  renderEvents(detail.events);
  const notes = Array.isArray(detail.notes) ? detail.notes : [];
  notes.forEach(appendNote);
  const messages = Array.isArray(detail.transcript) ? detail.transcript : [];
  if (messages.map(appendMessage).some(Boolean)) scrollTranscript();
}

/** A TicketSummary (from an action or the websocket) for the open ticket. */
function applyTicketSummary(summary) {
  if (!isPlainObject(summary) || !sameId(summary.id, state.openTicketId)) return;
  state.ticket = { ...(state.ticket || {}), ...summary };
  renderTicketHeader();
  renderControls();
}

function renderTicketHeader() {
  const ticket = state.ticket;
  if (!ticket) return;
  const priority = priorityClass(ticket.priority);
  const priorityBadge = $("ticket-priority");
  priorityBadge.className = `priority ${priority}`;
  priorityBadge.textContent = ticket.priority || "P?";
  $("ticket-vip").hidden = ticket.vip !== true;
  $("ticket-title").textContent = `#${ticket.id} ${ticket.reason || ""}`.trim();

  const status = $("ticket-status");
  status.textContent = statusText(ticket);
  status.dataset.status = ticket.status || "";

  $("ticket-customer").textContent = customerLabel(ticket.customer);
  $("ticket-channel").textContent = ticket.channel || "";
  $("ticket-holder").textContent = headerHolderText(ticket);
  $("ticket-csat").textContent = typeof ticket.csat === "number" ? `CSAT ${ticket.csat}/5` : "";
  setSlaData($("ticket-sla"), ticket.sla, ticket.status === "resolved");
  setWaitingData($("ticket-waiting"), ticket);
  tick();
}

/** The status badge already says "queued": the header line says where it stands instead. */
function headerHolderText(ticket) {
  if (isPlainObject(ticket.assigned_agent) || ticket.status !== "queued") return holderText(ticket);
  return typeof ticket.position === "number" ? `#${ticket.position} in the queue` : "not claimed yet";
}

function statusText(ticket) {
  const outcome = ticket.outcome ? ` (${String(ticket.outcome).replace(/_/g, " ")})` : "";
  return `${ticket.status || "unknown"}${outcome}`;
}

function renderControls() {
  const ticket = state.ticket;
  const status = ticket ? ticket.status : null;
  const mine = holdsOpenTicket();
  // An admin may resolve a ticket someone else holds (the server allows it; replying stays the holder's).
  const mayResolve = mine || (status === "assigned" && Boolean(state.me) && state.me.role === "admin");
  $("claim").disabled = status !== "queued";
  $("handback").disabled = !mayResolve;
  $("close").disabled = !(mayResolve || status === "queued");
  $("send").disabled = !mine || state.sending;
  $("add-note").disabled = !ticket || state.noting;
  $("reply-text").placeholder = mine
    ? "Write to the customer. Enter sends, Shift+Enter adds a line."
    : "Claim the ticket to reply.";
  $("note-text").placeholder = "Ctrl+Enter adds the note.";
}

// ---------------------------------------------------------------- transcript

/** Inserts `node` in id order, so lines from the websocket and from a fetch interleave right. */
function insertById(list, node, id, dataKey) {
  const number = Number(id);
  if (Number.isFinite(number)) {
    const later = Array.from(list.children).find((child) => Number(child.dataset[dataKey]) > number);
    if (later) {
      list.insertBefore(node, later);
      return;
    }
  }
  list.append(node);
}

/** Adds a message unless it is already shown; returns whether it was added. */
function appendMessage(message) {
  if (!isPlainObject(message)) return false;
  const hasId = message.id !== null && message.id !== undefined;
  if (hasId) {
    if (state.messageIds.has(String(message.id))) return false;
    state.messageIds.add(String(message.id));
  }
  insertById($("transcript"), renderMessage(message), message.id, "messageId");
  return true;
}

function scrollTranscript() {
  const transcript = $("transcript");
  transcript.scrollTop = transcript.scrollHeight;
}

function authorLabel(message, author) {
  if (author === "agent") return message.agent || "Agent";
  return { customer: "Customer", bot: "Bot", system: "System" }[author];
}

function renderMessage(message) {
  const author = AUTHORS.has(message.author) ? message.author : "system";
  const item = el("li", { className: "message", attrs: { "data-author": author, "data-message-id": message.id } });
  const meta = el("div", { className: "meta" }, [
    el("span", { className: "author", text: authorLabel(message, author) }),
    message.channel ? el("span", { className: "channel", text: message.channel }) : null,
    timeElement(message.created_at),
  ]);
  const hasText = typeof message.text === "string" && message.text !== "";
  const text = messageText(author, hasText ? message.text : "", hasText ? "text" : "text empty");
  item.append(meta, text);

  const payload = isPlainObject(message.payload) ? message.payload : null;
  if (payload) item.append(...renderPayload(payload));
  if (author === "customer" && isPlainObject(message.nlu)) {
    const annotation = renderNlu(message.nlu);
    if (annotation) item.append(annotation);
    item.classList.toggle("frustrated", typeof message.nlu.frustration === "number" && message.nlu.frustration >= HIGH_FRUSTRATION);
  }
  return item;
}

function renderNlu(nlu) {
  const parts = [];
  if (nlu.intent) {
    const confidence = formatPercent(nlu.confidence);
    parts.push(el("span", { className: "intent", text: confidence ? `${nlu.intent} ${confidence}` : nlu.intent }));
  }
  const entities = Array.isArray(nlu.entities) ? nlu.entities.filter(isPlainObject) : [];
  if (entities.length > 0) {
    const text = entities.map((entity) => `${formatValue(entity.entity)}=${formatValue(entity.value)}`).join(", ");
    parts.push(el("span", { className: "entities", text }));
  }
  if (typeof nlu.frustration === "number") {
    const node = el("span", { className: "frustration", text: `frustration ${formatScore(nlu.frustration)}` });
    node.classList.toggle("high", nlu.frustration >= HIGH_FRUSTRATION);
    parts.push(node);
  }
  const cues = Array.isArray(nlu.cues) ? nlu.cues : [];
  if (cues.length > 0) parts.push(el("span", { className: "nlu-cues", text: `cues: ${cues.map(formatValue).join(", ")}` }));
  if (parts.length === 0) return null;

  const annotation = el("div", { className: "nlu", attrs: { "aria-label": "What the assistant understood" } }, parts);
  annotation.classList.toggle("high-frustration", typeof nlu.frustration === "number" && nlu.frustration >= HIGH_FRUSTRATION);
  return annotation;
}

// ---------------------------------------------------------------- context, notes, history

const CONTEXT_LABELS = {
  reason: "Reason",
  priority: "Priority",
  order_id: "Order",
  problem: "Problem",
  frustration: "Frustration",
  cues: "Cues",
  urgency: "Urgency",
  impact: "Impact",
  vip: "VIP",
  customer: "Customer",
};
const CONTEXT_TABLES = ["orders", "returns"];
// What the model understood of the escalating message is already beside it in the transcript.
const CONTEXT_HIDDEN = ["nlu"];

function renderContext(context) {
  const box = $("context-body");
  if (!isPlainObject(context) || Object.keys(context).length === 0) {
    box.replaceChildren(el("p", { className: "muted", text: "The assistant passed on no context." }));
    return;
  }
  const shown = Object.keys(context).filter((key) => !CONTEXT_TABLES.includes(key) && !CONTEXT_HIDDEN.includes(key));
  const known = Object.keys(CONTEXT_LABELS).filter((key) => shown.includes(key));
  const others = shown.filter((key) => !(key in CONTEXT_LABELS));
  const facts = el("dl", { className: "facts" });
  for (const key of [...known, ...others]) {
    facts.append(el("dt", { text: CONTEXT_LABELS[key] || humanize(key) }), el("dd", {}, [contextValue(key, context[key])]));
  }
  const tables = CONTEXT_TABLES.filter((key) => key in context).map((key) => tableSection(humanize(key), context[key]));
  box.replaceChildren(facts, ...tables);
}

function contextValue(key, value) {
  if (value === null || value === undefined || value === "") return el("span", { className: "muted", text: "—" });
  if (key === "frustration" && typeof value === "number") {
    const node = el("span", { className: "frustration", text: formatScore(value) });
    node.classList.toggle("high", value >= HIGH_FRUSTRATION);
    return node;
  }
  if (key === "cues" && Array.isArray(value)) {
    return value.length > 0 ? cueList(value) : el("span", { className: "muted", text: "none" });
  }
  if (key === "customer" && isPlainObject(value)) return smallFacts(value);
  if (Array.isArray(value) && value.length > 0 && value.every(isPlainObject)) return dataTable(value);
  if (isPlainObject(value) || Array.isArray(value)) {
    return el("code", { className: "json", text: Array.isArray(value) ? formatValue(value) : JSON.stringify(value) });
  }
  return document.createTextNode(formatValue(value));
}

function smallFacts(object) {
  const list = el("dl", { className: "facts small" });
  for (const [key, value] of Object.entries(object)) {
    list.append(el("dt", { text: humanize(key) }), el("dd", { text: formatValue(value) }));
  }
  return list;
}

function tableSection(title, rows) {
  const section = el("section", { className: "context-table" }, [el("h4", { text: title })]);
  if (!Array.isArray(rows)) section.append(el("code", { className: "json", text: JSON.stringify(rows) }));
  else if (rows.length === 0) section.append(el("p", { className: "muted", text: "None" }));
  else section.append(dataTable(rows));
  return section;
}

/** A table of objects; the columns are every key any row has, in first-seen order. */
function dataTable(rows) {
  const columns = [];
  for (const row of rows) {
    if (!isPlainObject(row)) continue;
    for (const key of Object.keys(row)) if (!columns.includes(key)) columns.push(key);
  }
  const head = el("tr", {}, columns.map((column) => el("th", { text: humanize(column), attrs: { scope: "col" } })));
  const body = rows.map((row) =>
    el("tr", {}, columns.map((column) => el("td", { text: isPlainObject(row) ? formatValue(row[column]) : formatValue(row) }))),
  );
  return el("div", { className: "table-wrap" }, [el("table", {}, [el("thead", {}, [head]), el("tbody", {}, body)])]);
}

function appendNote(note) {
  if (!isPlainObject(note)) return false;
  const hasId = note.id !== null && note.id !== undefined;
  if (hasId) {
    if (state.noteIds.has(String(note.id))) return false;
    state.noteIds.add(String(note.id));
  }
  const item = el("li", { className: "note", attrs: { "data-note-id": note.id } }, [
    el("div", { className: "meta" }, [el("span", { className: "author", text: agentLabel(note.agent) }), timeElement(note.created_at)]),
    el("div", { className: "text", text: formatValue(note.text) }),
  ]);
  insertById($("notes"), item, note.id, "noteId");
  return true;
}

function renderEvents(events) {
  const list = Array.isArray(events) ? events.filter(isPlainObject) : [];
  $("events").replaceChildren(...list.map(renderEvent));
  $("events-count").textContent = list.length > 0 ? String(list.length) : "";
}

function renderEvent(event) {
  const change = event.from_status || event.to_status ? `${event.from_status || "—"} → ${event.to_status || "—"}` : "";
  return el("li", { className: "event", attrs: { "data-action": event.action } }, [
    timeElement(event.at),
    el("span", { className: "action", text: humanize(event.action || "event") }),
    change ? el("span", { className: "change", text: change }) : null,
    event.actor ? el("span", { className: "actor", text: `by ${formatValue(event.actor)}` }) : null,
  ]);
}

// ---------------------------------------------------------------- actions

const TICKET_ACTIONS = {
  claim: { after: () => $("reply-text").focus() },
  handback: { confirm: "Hand this conversation back to the bot?", after: focusQueue },
  close: { confirm: "Close this ticket? The customer will be asked to rate the help.", after: focusQueue },
};

/** claim, handback or close the open ticket; `ask` confirms first (used by the shortcuts). */
async function ticketAction(name, { ask = false } = {}) {
  const action = TICKET_ACTIONS[name];
  const id = state.openTicketId;
  if (!action || id === null || $(name).disabled || state.busy) return;
  if (ask && action.confirm && !window.confirm(action.confirm)) return;
  state.busy = true;
  clearError();
  try {
    const ticket = await api("POST", `/tickets/${id}/${name}`);
    applyTicketSummary(ticket);
    if (sameId(id, state.openTicketId)) action.after();
  } catch (error) {
    showError(error.message);
  } finally {
    state.busy = false;
    // Success or a 409, the ticket has changed: show what it is now.
    refreshQueue();
    if (sameId(id, state.openTicketId)) loadOpenTicket();
  }
}

async function sendReply(event) {
  if (event) event.preventDefault();
  const box = $("reply-text");
  const text = box.value.trim();
  const id = state.openTicketId;
  if (!text || state.sending || !holdsOpenTicket()) return;
  state.sending = true;
  renderControls();
  clearError();
  try {
    const message = await api("POST", `/tickets/${id}/messages`, { text });
    if (sameId(id, state.openTicketId)) {
      if (box.value.trim() === text) box.value = "";
      if (appendMessage(message)) scrollTranscript();
    }
  } catch (error) {
    showError(error.message);
  } finally {
    state.sending = false;
    renderControls();
  }
}

async function addNote(event) {
  if (event) event.preventDefault();
  const box = $("note-text");
  const text = box.value.trim();
  const id = state.openTicketId;
  if (!text || state.noting || id === null) return;
  state.noting = true;
  renderControls();
  clearError();
  try {
    const note = await api("POST", `/tickets/${id}/notes`, { text });
    if (sameId(id, state.openTicketId)) {
      if (box.value.trim() === text) box.value = "";
      appendNote(note);
    }
  } catch (error) {
    showError(error.message);
  } finally {
    state.noting = false;
    renderControls();
  }
}

// ---------------------------------------------------------------- keyboard

function onReplyKeydown(event) {
  if (event.key === "Escape") return leaveField(event);
  if (event.key !== "Enter" || event.shiftKey || event.altKey || event.isComposing) return;
  event.preventDefault();
  sendReply();
}

function onNoteKeydown(event) {
  if (event.key === "Escape") return leaveField(event);
  if (event.key !== "Enter" || !(event.ctrlKey || event.metaKey) || event.isComposing) return;
  event.preventDefault();
  addNote();
}

function leaveField(event) {
  event.preventDefault();
  focusQueue();
}

function focusTextBox(id) {
  if (state.openTicketId !== null) $(id).focus();
}

const SHORTCUTS = {
  c: () => ticketAction("claim"),
  r: () => focusTextBox("reply-text"),
  n: () => focusTextBox("note-text"),
  h: () => ticketAction("handback", { ask: true }),
  x: () => ticketAction("close", { ask: true }),
  "/": focusQueue,
  q: focusQueue,
};

function onDocumentKeydown(event) {
  if (event.defaultPrevented || event.ctrlKey || event.metaKey || event.altKey || event.isComposing) return;
  if (isTypingTarget(event.target)) return;
  const shortcut = Object.prototype.hasOwnProperty.call(SHORTCUTS, event.key) ? SHORTCUTS[event.key] : null;
  if (!shortcut) return;
  // Without this the key would also be typed into the box that "r" or "n" focuses.
  event.preventDefault();
  shortcut();
}

// ---------------------------------------------------------------- websocket

function setConnection(status) {
  const node = $("connection");
  node.textContent = status;
  node.dataset.state = status;
  node.className = `connection ${status}`;
}

function connectSocket() {
  if (state.leaving) return;
  state.reconnectTimer = null;
  const url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + API_ROOT + "/ws";
  let socket;
  try {
    socket = new WebSocket(url);
  } catch {
    scheduleReconnect();
    return;
  }
  state.socket = socket;
  socket.addEventListener("open", onSocketOpen);
  socket.addEventListener("message", onSocketMessage);
  socket.addEventListener("close", onSocketClose);
}

function onSocketOpen() {
  state.reconnectDelay = RECONNECT_MIN_MS;
  setConnection("live");
  // Whatever happened while no socket was listening (or before the first one) is fetched now.
  refreshQueue();
  if (state.openTicketId !== null) loadOpenTicket();
}

function onSocketClose(event) {
  if (event.target !== state.socket) return;
  state.socket = null;
  if (state.leaving) return;
  setConnection("reconnecting");
  scheduleReconnect();
}

function scheduleReconnect() {
  if (state.reconnectTimer !== null || state.leaving) return;
  const delay = state.reconnectDelay;
  state.reconnectDelay = Math.min(delay * 2, RECONNECT_MAX_MS);
  // Jitter keeps a room of consoles from reconnecting in lockstep after a server restart.
  state.reconnectTimer = setTimeout(connectSocket, delay + Math.random() * delay * 0.2);
}

function onSocketMessage(event) {
  let frame;
  try {
    frame = JSON.parse(event.data);
  } catch {
    return;
  }
  if (!isPlainObject(frame)) return;
  if (frame.type === "ticket") onTicketFrame(frame.ticket);
  else if (frame.type === "message") onMessageFrame(frame.ticket_id, frame.message);
  else if (frame.type === "note") onNoteFrame(frame.ticket_id, frame.note);
}

function onTicketFrame(ticket) {
  refreshQueue();
  if (isPlainObject(ticket) && sameId(ticket.id, state.openTicketId)) {
    applyTicketSummary(ticket);
    loadOpenTicket(); // the history and context may have changed too
  }
}

function onMessageFrame(ticketId, message) {
  if (!isPlainObject(message)) return;
  if (sameId(ticketId, state.openTicketId) && appendMessage(message)) scrollTranscript();
  if (message.author === "customer" && typeof message.text === "string" && message.text !== "") {
    updateQueueLastMessage(ticketId, message.text);
    // A queue fetch already under way may have read the tickets before this message: fetch again after it.
    if (state.queueLoading) state.queueStale = true;
  }
}

function onNoteFrame(ticketId, note) {
  if (sameId(ticketId, state.openTicketId)) appendNote(note);
}

// ---------------------------------------------------------------- start

function start() {
  const page = document.body.dataset.page;
  if (page === "login") initLoginPage();
  else if (page === "agent") initAgentPage();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
