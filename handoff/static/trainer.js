// Trainer console of the helpdesk: the messages the bot missed, grouped by meaning, the
// trainer's decisions on them, the export of the labels, retraining and the latest evaluation.
// Every piece of server text goes into the page through textContent or text nodes, never
// through HTML parsing: customers can write anything.
"use strict";

const LOGIN_PAGE = "/agent/login";
const TRAINING_POLL_MS = 2000;
const LOG_LINES = 40;
const NOTE_MAX = 2000;
// As the server checks it (training/curation.py INTENT_NAME).
const INTENT_NAME = /^[a-z][a-z0-9_]{1,63}$/;
const NOT_INTENTS = new Set(["nlu_fallback"]);
const AUTHORS = new Set(["customer", "bot", "agent", "system"]);
const REASON_LABELS = {
  nlu_fallback: "NLU fallback",
  core_fallback: "No next step",
  out_of_scope: "Out of scope",
  kb_miss: "Knowledge-base miss",
  low_csat: "Low CSAT",
};
const DECISION_DONE = {
  label: (count, intent) => `Labelled ${plural(count, "message")} as ${intent}.`,
  kb_gap: (count) => `Marked ${plural(count, "message")} as a knowledge-base gap.`,
  dismissed: (count) => `Dismissed ${plural(count, "message")}.`,
};

const state = {
  me: null,
  intents: [],
  groupsRequest: 0,
  unpicked: new Set(), // ids of messages the trainer unticked; kept across refreshes
  typed: new Map(), // message id -> intent typed in its group's form; kept across refreshes
  deciding: false,
  transcriptRequest: 0,
  transcriptFor: null,
  transcriptOpener: null,
  training: null,
  retraining: false,
  pollTimer: null,
  reportRequest: 0,
  exporting: false,
  leaving: false,
};

// ---------------------------------------------------------------- small helpers

/** Builds an element; `text` becomes a text node, children may be nodes or strings (text). */
function plural(count, word) {
  return `${count} ${word}${count === 1 ? "" : "s"}`;
}

function humanize(key) {
  const text = String(key).replace(/_/g, " ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function reasonLabel(reason) {
  if (typeof reason !== "string" || reason === "") return "Unknown reason";
  return Object.prototype.hasOwnProperty.call(REASON_LABELS, reason) ? REASON_LABELS[reason] : humanize(reason);
}

/** A finite number, or null. */
function numberOrNull(value) {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

/** A positive integer id (the server sends numbers; a string of digits is accepted), or null. */
function messageId(value) {
  const number = typeof value === "string" && /^\d+$/.test(value) ? Number(value) : value;
  return Number.isInteger(number) && number > 0 ? number : null;
}

function formatPercent(value, digits = 0) {
  const number = numberOrNull(value);
  return number === null ? "" : `${(number * 100).toFixed(digits)}%`;
}

function formatScore(value, digits = 3) {
  const number = numberOrNull(value);
  return number === null ? "—" : number.toFixed(digits);
}

/** An intent name that may wrap after its underscores (and nowhere else). */
function wrappableName(name) {
  const fragment = document.createDocumentFragment();
  String(name).split("_").forEach((part, index, parts) => {
    fragment.append(index < parts.length - 1 ? `${part}_` : part);
    if (index < parts.length - 1) fragment.append(document.createElement("wbr"));
  });
  return fragment;
}

/** "+0.012", "-0.030"; null when there is nothing to compare. */
function signed(value, digits) {
  const number = numberOrNull(value);
  if (number === null) return null;
  const fixed = Math.abs(number).toFixed(digits);
  if (Number(fixed) === 0) return "no change";
  return `${number > 0 ? "+" : "-"}${fixed}`;
}

function deltaClass(difference) {
  if (difference === null || Math.abs(difference) < 1e-9) return "same";
  return difference > 0 ? "better" : "worse";
}

// ---------------------------------------------------------------- the API

function redirectToLogin() {
  state.leaving = true;
  stopPolling();
  if (location.pathname !== LOGIN_PAGE) location.assign(`${LOGIN_PAGE}?next=/trainer`);
}

/** Calls the JSON API; throws an Error (with .status) carrying the server's message on anything but 2xx. */
async function api(method, path, body) {
  const [response, data] = await sendJson(method, path, body);
  if (response.status === 401) {
    redirectToLogin();
    const failure = new Error(errorText(data, "Your session has ended. Please sign in again."));
    failure.status = 401;
    throw failure;
  }
  if (!response.ok) {
    const failure = new Error(errorText(data, `The request failed (HTTP ${response.status}).`));
    failure.status = response.status;
    throw failure;
  }
  return data;
}

function showError(message) {
  if (state.leaving) return;
  $("error").textContent = message;
}

function showStatus(message) {
  $("status").textContent = message;
}

function clearStatus() {
  $("status").textContent = "";
}

// ---------------------------------------------------------------- start

async function initTrainerPage() {
  bindControls();
  try {
    state.me = await api("GET", "/auth/me");
  } catch (error) {
    showError(error.message);
    return;
  }
  const me = isPlainObject(state.me) ? state.me : {};
  $("me").textContent = me.name || me.email || "trainer";
  loadGroups();
  loadIntents();
  loadTraining();
  loadReport();
}

function bindControls() {
  $("logout").addEventListener("click", logout);
  $("refresh").addEventListener("click", () => {
    clearError();
    clearStatus();
    loadGroups();
  });
  const groups = $("groups");
  groups.addEventListener("change", onGroupsChange);
  groups.addEventListener("input", onGroupsInput);
  groups.addEventListener("click", onGroupsClick);
  groups.addEventListener("submit", onGroupsSubmit);
  $("transcript-close").addEventListener("click", closeTranscript);
  $("export").addEventListener("click", exportLabels);
  $("retrain").addEventListener("click", retrain);
  const matrix = $("confusion-matrix");
  matrix.addEventListener("load", () => setMatrixMissing(false));
  matrix.addEventListener("error", () => {
    if (matrix.getAttribute("src")) setMatrixMissing(true);
  });
  document.addEventListener("keydown", onDocumentKeydown);
}

async function logout() {
  state.leaving = true;
  stopPolling();
  try {
    await api("POST", "/auth/logout");
  } catch {
    // Going to the login page is right whatever the server answered.
  }
  location.assign(LOGIN_PAGE);
}

function onDocumentKeydown(event) {
  if (event.key !== "Escape" || event.defaultPrevented || $("transcript").hidden) return;
  const target = event.target;
  const inPanel = target instanceof Node && $("transcript").contains(target);
  // Escape in the intent box closes its list of suggestions first.
  if (!inPanel && target instanceof Element && target.closest("input[type='text'], textarea, select")) return;
  event.preventDefault();
  closeTranscript();
}

// ---------------------------------------------------------------- intents

async function loadIntents() {
  try {
    const data = await api("GET", "/intents");
    const intents = isPlainObject(data) && Array.isArray(data.intents) ? data.intents : [];
    state.intents = intents.filter((name) => typeof name === "string" && name !== "").sort();
    renderIntentList();
  } catch (error) {
    showError(`The list of intents could not be loaded: ${error.message}`);
  }
}

function renderIntentList() {
  $("intent-list").replaceChildren(...state.intents.map((name) => el("option", { attrs: { value: name } })));
  for (const input of document.querySelectorAll("#groups input.intent")) updateIntentHint(input);
}

function addKnownIntent(name) {
  if (!state.intents.includes(name)) {
    state.intents.push(name);
    state.intents.sort();
    renderIntentList();
  }
}

// ---------------------------------------------------------------- missed messages

/** Fetches the groups; only the latest request draws. */
async function loadGroups() {
  if (state.leaving) return;
  const request = ++state.groupsRequest;
  setGroupsLoading(true);
  try {
    const data = await api("GET", "/unresolved");
    if (request !== state.groupsRequest) return;
    const groups = isPlainObject(data) && Array.isArray(data.groups) ? data.groups.filter(isPlainObject) : [];
    const focus = captureFocus();
    renderGroups(groups, isPlainObject(data) ? data.open : null);
    restoreFocus(focus);
  } catch (error) {
    if (request !== state.groupsRequest) return;
    showError(`The missed messages could not be loaded: ${error.message}`);
    if (!$("groups").querySelector("li.group")) {
      $("groups").replaceChildren(el("li", { className: "empty", text: "The missed messages could not be loaded. Try Refresh." }));
    }
  } finally {
    if (request === state.groupsRequest) setGroupsLoading(false);
  }
}

function setGroupsLoading(loading) {
  const list = $("groups");
  list.setAttribute("aria-busy", loading ? "true" : "false");
  list.classList.toggle("refreshing", loading && Boolean(list.querySelector("li.group")));
  // The first load says why it takes a while; a refresh only dims the list it replaces.
  $("groups-loading").hidden = !(loading && !list.querySelector("li.group"));
  $("refresh").disabled = loading;
  if (loading && !list.querySelector("li.group")) list.replaceChildren();
}

function renderGroups(groups, open) {
  const shown = new Set();
  const items = groups.map((group, index) => renderGroup(group, index, shown)).filter(Boolean);
  // Forget ticks and typing for messages no longer listed.
  for (const id of state.unpicked) if (!shown.has(id)) state.unpicked.delete(id);
  for (const id of state.typed.keys()) if (!shown.has(id)) state.typed.delete(id);
  const list = $("groups");
  if (items.length === 0) {
    list.replaceChildren(el("li", { className: "empty", text: "Nothing to review: the bot missed no messages that wait for a decision." }));
  } else {
    list.replaceChildren(...items);
  }
  setOpenCount(Number.isInteger(open) && open >= 0 ? open : shown.size);
}

function setOpenCount(count) {
  $("open-count").textContent = String(Math.max(0, count));
}

function renderGroup(group, index, shown) {
  const messages = (Array.isArray(group.messages) ? group.messages : []).filter(
    (message) => isPlainObject(message) && messageId(message.id) !== null,
  );
  if (messages.length === 0) return null;
  for (const message of messages) shown.add(messageId(message.id));
  const size = Number.isInteger(group.size) ? group.size : messages.length;
  const prefix = `group-${index}`;
  const suggested = typeof group.suggested_intent === "string" && group.suggested_intent !== "" ? group.suggested_intent : null;

  const pickAll = el("input", {
    className: "pick-all",
    attrs: { type: "checkbox", id: `${prefix}-all`, title: "Tick or untick every message of this group", "aria-describedby": `${prefix}-heading` },
  });
  const head = el("div", { className: "group-head" }, [
    pickAll,
    el("label", { className: "visually-hidden", text: "All messages of this group", attrs: { for: `${prefix}-all` } }),
    el("h3", { className: "group-title", attrs: { id: `${prefix}-heading`, tabindex: "-1" } }, [
      el("span", { className: "size", text: size }),
      size === 1 ? " message" : " similar messages",
    ]),
    renderReasons(group.reasons),
    el("span", { className: "suggestion" }, suggested
      ? ["Suggested intent: ", el("strong", { className: "suggested-intent", text: suggested })]
      : [el("span", { className: "suggested-intent none", text: "No suggested intent" })]),
  ]);

  const list = el("ul", { className: "messages", attrs: { "aria-label": "Messages of this group" } }, messages.map(renderMessage));
  const item = el("li", {
    className: "group",
    attrs: { "data-size": size, "data-index": index, "aria-labelledby": `${prefix}-heading` },
  }, [head, list, renderDecisionForm(prefix, messages, suggested)]);
  updateGroupControls(item);
  return item;
}

function renderReasons(reasons) {
  const list = el("ul", { className: "reasons", attrs: { "aria-label": "Why they were logged" } });
  if (isPlainObject(reasons)) {
    const entries = Object.entries(reasons).sort((a, b) => (Number(b[1]) || 0) - (Number(a[1]) || 0));
    for (const [reason, count] of entries) {
      list.append(el("li", { className: "badge reason", attrs: { "data-reason": reason } }, [
        reasonLabel(reason),
        " ",
        el("span", { className: "reason-count", text: Number.isFinite(Number(count)) ? String(count) : "" }),
      ]));
    }
  }
  return list;
}

/** The model's best guess, the fallback aside (it is no intent to label with). */
function rankedIntents(ranking) {
  if (!Array.isArray(ranking)) return [];
  return ranking
    .filter((item) => isPlainObject(item) && typeof item.name === "string" && !NOT_INTENTS.has(item.name))
    .map((item) => ({ name: item.name, confidence: numberOrNull(item.confidence) }))
    .sort((a, b) => (b.confidence ?? -1) - (a.confidence ?? -1));
}

function renderMessage(message) {
  const id = messageId(message.id);
  const pickId = `pick-${id}`;
  const textId = `text-${id}`;
  const pick = el("input", { className: "pick", attrs: { type: "checkbox", id: pickId } });
  pick.checked = !state.unpicked.has(id);
  const hasText = typeof message.text === "string" && message.text.trim() !== "";
  const ranked = rankedIntents(message.ranking);
  const top = ranked[0];
  const topIntent = top
    ? el("span", {
        className: "top-intent",
        attrs: { title: `Model's ranking: ${ranked.slice(0, 5).map((item) => `${item.name} ${formatPercent(item.confidence)}`).join(", ")}` },
      }, [
        "Model: ",
        el("span", { className: "intent-name", text: top.name }),
        " ",
        el("span", { className: "confidence", text: formatPercent(top.confidence) }),
      ])
    : el("span", { className: "top-intent none", text: "Model: no intent" });

  return el("li", { className: "message", attrs: { "data-id": id, "data-reason": message.reason } }, [
    pick,
    el("div", { className: "message-body" }, [
      el("label", { className: hasText ? "text" : "text empty", text: hasText ? message.text : "(empty message)", attrs: { for: pickId, id: textId } }),
      el("div", { className: "meta" }, [
        el("span", { className: "badge reason", attrs: { "data-reason": message.reason }, text: reasonLabel(message.reason) }),
        topIntent,
        timeElement(message.created_at),
      ]),
    ]),
    el("button", {
      className: "button small show-transcript",
      text: "Conversation",
      attrs: { type: "button", "aria-describedby": textId, "aria-controls": "transcript", "aria-expanded": state.transcriptFor === id ? "true" : "false" },
    }),
  ]);
}

function renderDecisionForm(prefix, messages, suggested) {
  const typed = messages.map((message) => state.typed.get(messageId(message.id))).find((value) => typeof value === "string");
  const input = el("input", {
    className: "intent",
    attrs: {
      id: `${prefix}-intent`,
      name: "intent",
      type: "text",
      list: "intent-list",
      autocomplete: "off",
      autocapitalize: "off",
      spellcheck: "false",
      maxlength: "64",
      placeholder: "intent_name",
      "aria-describedby": `${prefix}-intent-hint`,
    },
  });
  input.value = typed !== undefined ? typed : suggested || "";
  const form = el("form", { className: "decide", attrs: { novalidate: "", "aria-label": "Decision on the ticked messages" } }, [
    el("div", { className: "intent-field" }, [
      el("label", { text: "Intent", attrs: { for: `${prefix}-intent` } }),
      input,
      el("span", { className: "intent-hint", attrs: { id: `${prefix}-intent-hint` } }),
    ]),
    el("div", { className: "decide-buttons" }, [
      el("button", { className: "button primary label", text: "Label", attrs: { type: "submit" } }),
      el("button", { className: "button kb-gap", text: "Knowledge-base gap", attrs: { type: "button" } }),
      el("button", { className: "button dismiss", text: "Dismiss", attrs: { type: "button" } }),
      el("span", { className: "picked-count", attrs: { "aria-live": "polite" } }),
    ]),
  ]);
  updateIntentHint(input);
  return form;
}

function intentProblem(value) {
  if (value === "") return "Type the intent these messages mean, or pick one from the list.";
  if (!INTENT_NAME.test(value)) return "An intent name is lower-case letters, digits and _ (at least 2 characters, starting with a letter), like order_status.";
  return null;
}

function updateIntentHint(input) {
  const hint = input.parentElement ? input.parentElement.querySelector(".intent-hint") : null;
  if (!hint) return;
  const value = input.value.trim();
  let text = "";
  let kind = "";
  if (value !== "" && !INTENT_NAME.test(value)) {
    text = "lower-case letters, digits and _";
    kind = "invalid";
  } else if (value !== "" && state.intents.length > 0 && !state.intents.includes(value)) {
    text = "new intent: labelling creates it";
    kind = "new";
  }
  hint.textContent = text;
  hint.dataset.kind = kind;
  if (kind !== "invalid") input.removeAttribute("aria-invalid");
}

function groupOf(node) {
  return node instanceof Element ? node.closest("li.group") : null;
}

function pickedIds(group) {
  return Array.from(group.querySelectorAll("li.message input.pick:checked"))
    .map((box) => messageId(box.closest("li.message").dataset.id))
    .filter((id) => id !== null);
}

/** The "All" box, the count of ticked messages and whether the decisions can be made. */
function updateGroupControls(group) {
  const boxes = Array.from(group.querySelectorAll("li.message input.pick"));
  const picked = boxes.filter((box) => box.checked).length;
  const all = group.querySelector("input.pick-all");
  if (all) {
    all.checked = boxes.length > 0 && picked === boxes.length;
    all.indeterminate = picked > 0 && picked < boxes.length;
  }
  const count = group.querySelector(".picked-count");
  if (count) count.textContent = picked === 0 ? "No message ticked" : `${picked} of ${boxes.length} ticked`;
  for (const button of group.querySelectorAll("form.decide button")) button.disabled = picked === 0 || state.deciding;
}

function onGroupsChange(event) {
  const target = event.target;
  const group = groupOf(target);
  if (!group || !(target instanceof HTMLInputElement)) return;
  if (target.classList.contains("pick")) {
    const id = messageId(target.closest("li.message").dataset.id);
    if (target.checked) state.unpicked.delete(id);
    else state.unpicked.add(id);
  } else if (target.classList.contains("pick-all")) {
    for (const box of group.querySelectorAll("li.message input.pick")) {
      box.checked = target.checked;
      const id = messageId(box.closest("li.message").dataset.id);
      if (target.checked) state.unpicked.delete(id);
      else state.unpicked.add(id);
    }
  } else {
    return;
  }
  updateGroupControls(group);
}

function onGroupsInput(event) {
  const target = event.target;
  if (!(target instanceof HTMLInputElement) || !target.classList.contains("intent")) return;
  const group = groupOf(target);
  for (const item of group.querySelectorAll("li.message")) state.typed.set(messageId(item.dataset.id), target.value);
  updateIntentHint(target);
}

function onGroupsClick(event) {
  const button = event.target instanceof Element ? event.target.closest("button") : null;
  if (!button || button.disabled) return;
  const group = groupOf(button);
  if (!group) return;
  if (button.classList.contains("show-transcript")) {
    openTranscript(messageId(button.closest("li.message").dataset.id), button);
  } else if (button.classList.contains("kb-gap")) {
    decide(group, "kb_gap");
  } else if (button.classList.contains("dismiss")) {
    decide(group, "dismissed");
  }
}

function onGroupsSubmit(event) {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || !form.classList.contains("decide")) return;
  event.preventDefault();
  const group = groupOf(form);
  if (group) decide(group, "label");
}

/** Labels, marks as a knowledge-base gap or dismisses the ticked messages of a group. */
async function decide(group, decision) {
  if (state.deciding) return;
  clearError();
  clearStatus();
  const ids = pickedIds(group);
  if (ids.length === 0) {
    showError("Tick at least one message of the group first.");
    return;
  }
  const body = { ids, decision };
  const input = group.querySelector("input.intent");
  if (decision === "label") {
    const intent = input.value.trim();
    const problem = intentProblem(intent);
    if (problem) {
      input.setAttribute("aria-invalid", "true");
      showError(problem);
      input.focus();
      return;
    }
    input.value = intent;
    body.intent = intent;
  } else if (decision === "kb_gap") {
    const answer = window.prompt(`Which knowledge-base article is missing? (required; for ${plural(ids.length, "message")})`, "");
    if (answer === null) return;
    const note = answer.trim();
    if (note === "") {
      showError("A knowledge-base gap needs a note: say which article is missing.");
      return;
    }
    if (note.length > NOTE_MAX) {
      showError(`The note is too long: at most ${NOTE_MAX} characters.`);
      return;
    }
    body.note = note;
  }

  state.deciding = true;
  setDecisionsEnabled();
  let decided = false;
  try {
    const result = await api("POST", "/unresolved/decisions", body);
    const count = isPlainObject(result) && Number.isInteger(result.decided) ? result.decided : ids.length;
    showStatus(DECISION_DONE[decision](count, body.intent));
    if (decision === "label") addKnownIntent(body.intent);
    removeDecided(ids);
    decided = true;
  } catch (error) {
    showError(error.message);
  } finally {
    state.deciding = false;
    setDecisionsEnabled();
  }
  // The decided messages have left the list; the others may group differently now.
  if (decided) loadGroups();
}

function setDecisionsEnabled() {
  for (const group of document.querySelectorAll("#groups li.group")) updateGroupControls(group);
}

/** Takes decided messages off the page at once (the re-fetch that follows regroups the rest). */
function removeDecided(ids) {
  const focus = captureFocus();
  let removed = 0;
  for (const id of ids) {
    state.unpicked.delete(id);
    state.typed.delete(id);
    const item = document.querySelector(`#groups li.message[data-id="${id}"]`);
    if (!item) continue;
    const group = groupOf(item);
    item.remove();
    removed += 1;
    if (!group.querySelector("li.message")) group.remove();
    else updateGroupControls(group);
  }
  const count = Number($("open-count").textContent);
  if (Number.isFinite(count)) setOpenCount(count - removed);
  if (!$("groups").querySelector("li.group")) {
    $("groups").replaceChildren(el("li", { className: "empty", text: "Nothing to review: the bot missed no messages that wait for a decision." }));
  }
  restoreFocus(focus);
}

/** Where focus is in the groups list, to put it back after the list is drawn again. */
function captureFocus() {
  const active = document.activeElement;
  const list = $("groups");
  if (!(active instanceof Element) || !list.contains(active)) return null;
  const group = groupOf(active);
  const message = active.closest("li.message");
  return {
    index: group ? Array.from(list.querySelectorAll("li.group")).indexOf(group) : 0,
    messageId: message ? message.dataset.id : null,
    className: active.classList.item(active.classList.length - 1),
    // The group is recognised by the messages it still has.
    ids: group ? Array.from(group.querySelectorAll("li.message")).map((item) => item.dataset.id) : [],
  };
}

function restoreFocus(saved) {
  if (!saved) return;
  const active = document.activeElement;
  // Focus is still on something on the page (the old node survived, or the trainer moved on).
  if (active instanceof Element && active !== document.body && active.isConnected) return;
  const list = $("groups");
  if (saved.messageId !== null) {
    const item = list.querySelector(`li.message[data-id="${saved.messageId}"]`);
    const control = item && saved.className ? item.querySelector(`.${CSS.escape(saved.className)}`) : null;
    if (control) return control.focus();
  }
  const groups = Array.from(list.querySelectorAll("li.group"));
  const same = groups.find((group) => saved.ids.some((id) => group.querySelector(`li.message[data-id="${id}"]`)));
  const target = same || groups[Math.min(saved.index, groups.length - 1)];
  if (target) {
    const control = same && saved.className ? target.querySelector(`.group-head .${CSS.escape(saved.className)}, form.decide .${CSS.escape(saved.className)}`) : null;
    (control && !control.disabled ? control : target.querySelector(".group-title")).focus();
  } else {
    $("missed-heading").focus();
  }
}

// ---------------------------------------------------------------- transcript panel

async function openTranscript(id, opener) {
  if (id === null) return;
  const panel = $("transcript");
  state.transcriptFor = id;
  state.transcriptOpener = opener || null;
  markViewing(id);
  const request = ++state.transcriptRequest;
  // The panel takes the model column's place (that column leaves the tab order meanwhile).
  $("model-panel").hidden = true;
  panel.hidden = false;
  panel.setAttribute("aria-busy", "true");
  $("transcript-heading").textContent = "Conversation";
  $("transcript-missed").replaceChildren(el("span", { className: "muted", text: "Loading…" }));
  $("transcript-messages").replaceChildren();
  panel.focus();
  try {
    const data = await api("GET", `/unresolved/${id}`);
    if (request !== state.transcriptRequest) return;
    renderTranscript(isPlainObject(data) ? data : {});
  } catch (error) {
    if (request !== state.transcriptRequest) return;
    $("transcript-missed").replaceChildren(el("span", { className: "error-text", text: `The conversation could not be loaded: ${error.message}` }));
  } finally {
    if (request === state.transcriptRequest) panel.setAttribute("aria-busy", "false");
  }
}

function closeTranscript() {
  const panel = $("transcript");
  if (panel.hidden) return;
  state.transcriptRequest += 1; // an answer still on its way is not drawn
  panel.hidden = true;
  $("model-panel").hidden = false;
  const id = state.transcriptFor;
  state.transcriptFor = null;
  markViewing(null);
  // Back to the button that opened it, or to where that message is now.
  let target = state.transcriptOpener;
  if (!(target instanceof Element) || !target.isConnected) {
    target = id !== null ? document.querySelector(`#groups li.message[data-id="${id}"] .show-transcript`) : null;
  }
  state.transcriptOpener = null;
  (target || $("missed-heading")).focus();
}

function markViewing(id) {
  for (const item of document.querySelectorAll("#groups li.message")) {
    const viewing = id !== null && messageId(item.dataset.id) === id;
    item.classList.toggle("viewing", viewing);
    const button = item.querySelector(".show-transcript");
    if (button) button.setAttribute("aria-expanded", viewing ? "true" : "false");
  }
}

function renderTranscript(data) {
  const missed = isPlainObject(data.message) ? data.message : {};
  const conversation = typeof missed.conversation_id === "string" || typeof missed.conversation_id === "number" ? String(missed.conversation_id) : "";
  const heading = $("transcript-heading");
  heading.replaceChildren("Conversation");
  if (conversation) heading.append(" ", el("span", { className: "conversation-id", text: conversation }));
  const missedText = typeof missed.text === "string" ? missed.text : "";
  $("transcript-missed").replaceChildren(
    el("span", { className: "label", text: "Missed: " }),
    el("q", { className: "text", text: missedText }),
    " ",
    el("span", { className: "badge reason", attrs: { "data-reason": missed.reason }, text: reasonLabel(missed.reason) }),
  );
  const lines = (Array.isArray(data.transcript) ? data.transcript : []).filter(isPlainObject);
  const list = $("transcript-messages");
  if (lines.length === 0) {
    list.replaceChildren(el("li", { className: "empty", text: "No messages were kept for this conversation." }));
    return;
  }
  const items = lines.map(renderLine);
  list.replaceChildren(...items);
  // The missed message, found by its text among the customer's lines (the last one if repeated).
  const match = items.filter((item, index) => lines[index].author === "customer" && lines[index].text === missedText).pop();
  if (match) {
    match.classList.add("missed");
    match.prepend(el("span", { className: "visually-hidden", text: "The missed message: " }));
    match.scrollIntoView({ block: "center" });
  }
}

function authorLabel(line, author) {
  if (author === "agent") return typeof line.agent === "string" && line.agent ? line.agent : "Agent";
  return { customer: "Customer", bot: "Bot", system: "System" }[author];
}

function renderLine(line) {
  const author = AUTHORS.has(line.author) ? line.author : "system";
  const hasText = typeof line.text === "string" && line.text !== "";
  const item = el("li", { className: "line", attrs: { "data-author": author, "data-line-id": line.id } }, [
    el("div", { className: "meta" }, [
      el("span", { className: "author", text: authorLabel(line, author) }),
      typeof line.channel === "string" && line.channel ? el("span", { className: "channel", text: `via ${line.channel}` }) : null,
      timeElement(line.created_at),
    ]),
    hasText ? messageText(author, line.text, "text") : null,
  ]);
  if (isPlainObject(line.payload)) item.append(...renderPayload(line.payload));
  return item;
}

// ---------------------------------------------------------------- export

async function exportLabels() {
  if (state.exporting) return;
  state.exporting = true;
  const button = $("export");
  const result = $("export-result");
  button.disabled = true;
  clearError();
  clearStatus();
  result.replaceChildren(el("p", { className: "muted", text: "Exporting…" }));
  try {
    const data = await api("POST", "/unresolved/export", {});
    renderExport(isPlainObject(data) ? data : {});
    showStatus("Labels exported.");
    loadIntents();
  } catch (error) {
    result.replaceChildren();
    showError(`The export failed: ${error.message}`);
  } finally {
    state.exporting = false;
    button.disabled = false;
  }
}

function renderExport(data) {
  const added = Number.isInteger(data.examples_added) ? data.examples_added : 0;
  const file = typeof data.file === "string" ? data.file : "";
  const newIntents = Array.isArray(data.new_intents) ? data.new_intents.filter((name) => typeof name === "string") : [];
  const lines = [
    el("p", {}, [
      el("strong", { className: "examples-added", text: String(added) }),
      ` new training ${added === 1 ? "example" : "examples"}`,
      file ? " in " : "",
      file ? el("code", { className: "file", text: file }) : null,
      added === 0 ? " (every label was already there)." : ".",
    ]),
  ];
  if (newIntents.length > 0) {
    const list = el("ul", { className: "new-intents" }, newIntents.map((name) => el("li", {}, [el("code", { text: name })])));
    lines.push(
      el("p", { text: `New ${newIntents.length === 1 ? "intent" : "intents"} added to the domain, each with a response to write (utter_<intent>) before the assistant can answer it:` }),
      list,
    );
  }
  $("export-result").replaceChildren(...lines);
}

// ---------------------------------------------------------------- training

async function loadTraining() {
  try {
    const data = await api("GET", "/training");
    applyTraining(data);
  } catch (error) {
    showError(`The training status could not be loaded: ${error.message}`);
  }
}

async function retrain() {
  if (state.retraining || isRunning(state.training)) return;
  state.retraining = true;
  renderTraining();
  clearError();
  clearStatus();
  try {
    const data = await api("POST", "/training", {});
    showStatus("Retraining started. The assistant keeps its current model until the new one is ready.");
    applyTraining(data, { started: true });
  } catch (error) {
    if (error.status === 409) {
      showStatus("Training is already running.");
      loadTraining();
    } else {
      showError(`Retraining could not start: ${error.message}`);
    }
  } finally {
    state.retraining = false;
    renderTraining();
  }
}

function isRunning(training) {
  return isPlainObject(training) && training.state === "running";
}

/** A training status from the server: draw it, announce an end, keep polling while it runs. */
function applyTraining(data, { started = false } = {}) {
  if (!isPlainObject(data)) return;
  const wasRunning = started || isRunning(state.training);
  state.training = data;
  renderTraining();
  if (wasRunning && !isRunning(data)) onTrainingFinished(data);
  schedulePoll();
}

function schedulePoll() {
  stopPolling();
  if (state.leaving || !isRunning(state.training)) return;
  state.pollTimer = setTimeout(pollTraining, TRAINING_POLL_MS);
}

function stopPolling() {
  if (state.pollTimer !== null) clearTimeout(state.pollTimer);
  state.pollTimer = null;
}

async function pollTraining() {
  state.pollTimer = null;
  if (state.leaving) return;
  try {
    applyTraining(await api("GET", "/training"));
  } catch (error) {
    showError(`The training status could not be loaded: ${error.message}`);
    schedulePoll(); // still running as far as we know: try again
  }
}

function onTrainingFinished(training) {
  if (training.state === "succeeded") {
    const model = typeof training.model === "string" && training.model ? training.model : "the new model";
    showStatus(`Retraining succeeded: the assistant now uses ${model}.`);
  } else if (training.state === "failed") {
    const reason = typeof training.error === "string" && training.error ? training.error : "see the output below";
    showError(`Retraining failed (${reason}). The assistant keeps its previous model.`);
  }
  loadReport();
  loadIntents();
}

const STATE_TEXT = {
  idle: () => "No retraining has run since the server started.",
  running: (training) => {
    const since = formatTime(training.started_at);
    return since ? `Retraining, started at ${since}…` : "Retraining…";
  },
  succeeded: (training) => {
    const when = formatTime(training.finished_at);
    const model = typeof training.model === "string" && training.model ? training.model : "the new model";
    return `Succeeded${when ? ` at ${when}` : ""}: the assistant now uses ${model}.`;
  },
  failed: (training) => {
    const when = formatTime(training.finished_at);
    const reason = typeof training.error === "string" && training.error ? `: ${training.error}` : "";
    return `Failed${when ? ` at ${when}` : ""}${reason}. The assistant keeps its previous model.`;
  },
};

function renderTraining() {
  const training = isPlainObject(state.training) ? state.training : null;
  const running = isRunning(training);
  $("retrain").disabled = running || state.retraining;
  const box = $("training");
  const name = training && typeof training.state === "string" ? training.state : "";
  box.dataset.state = name;
  const describe = Object.prototype.hasOwnProperty.call(STATE_TEXT, name) ? STATE_TEXT[name] : null;
  $("training-state").textContent = describe ? describe(training) : (name ? `State: ${name}` : "");

  $("training-running").hidden = !running;
  const progress = $("training-progress");
  const fraction = training ? numberOrNull(training.progress) : null;
  if (running && fraction !== null) {
    const value = Math.min(1, Math.max(0, fraction));
    progress.value = value;
    progress.textContent = formatPercent(value);
    $("training-percent").textContent = formatPercent(value);
  } else {
    progress.removeAttribute("value"); // indeterminate
    progress.textContent = "";
    $("training-percent").textContent = "";
  }
  $("training-step").textContent = running && training && typeof training.step === "string" ? training.step : running ? "starting" : "";

  const log = $("training-log");
  const lines = training && Array.isArray(training.log) ? training.log.map((line) => (typeof line === "string" ? line : JSON.stringify(line))) : [];
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 8;
  log.textContent = lines.slice(-LOG_LINES).join("\n");
  log.hidden = lines.length === 0;
  if (atBottom) log.scrollTop = log.scrollHeight;
}

// ---------------------------------------------------------------- report

async function loadReport() {
  const request = ++state.reportRequest;
  const section = $("report");
  section.setAttribute("aria-busy", "true");
  try {
    const data = await api("GET", "/reports/latest");
    if (request !== state.reportRequest) return;
    renderReport(isPlainObject(data) ? data : {});
  } catch (error) {
    if (request !== state.reportRequest) return;
    if (error.status === 404) {
      renderReport({});
    } else {
      showError(`The latest evaluation could not be loaded: ${error.message}`);
      if ($("report-body").hidden) $("report-empty").textContent = "The latest evaluation could not be loaded.";
    }
  } finally {
    if (request === state.reportRequest) section.setAttribute("aria-busy", "false");
  }
}

function renderReport(data) {
  const current = isPlainObject(data.current) ? data.current : null;
  const previous = isPlainObject(data.previous) ? data.previous : null;
  const empty = $("report-empty");
  if (!current) {
    empty.textContent = "No evaluation yet: retrain or run make evaluate";
    empty.hidden = false;
    $("report-body").hidden = true;
    $("confusion-matrix").removeAttribute("src");
    $("confusion-matrix-link").removeAttribute("href");
    return;
  }
  empty.hidden = true;
  $("report-body").hidden = false;

  const model = typeof current.model === "string" ? current.model : "unknown model";
  const when = formatTime(current.when);
  const before = previous && typeof previous.model === "string" ? ` · before: ${previous.model}` : " · no earlier model to compare with";
  $("report-model").textContent = `${model}${when ? `, evaluated ${when}` : ""}${before}`;

  renderMeasure("report-accuracy", current.accuracy, previous ? previous.accuracy : null, (value) => formatPercent(value, 1), (diff) => {
    const text = signed(diff * 100, 1);
    return text === "no change" ? text : `${text} pts`;
  });
  renderMeasure("report-macro-f1", current.macro_f1, previous ? previous.macro_f1 : null, formatScore, (diff) => signed(diff, 3));

  const comparison = typeof data.comparison === "string" ? data.comparison.trim() : "";
  $("report-comparison").textContent = comparison || "No comparison was written.";

  renderIntentTable(isPlainObject(current.intents) ? current.intents : {}, previous && isPlainObject(previous.intents) ? previous.intents : null);

  const version = encodeURIComponent(typeof current.when === "string" && current.when ? current.when : model);
  const src = `${API_ROOT}/reports/latest/confusion_matrix.png?v=${version}`;
  const image = $("confusion-matrix");
  if (image.getAttribute("src") !== src) {
    setMatrixMissing(false);
    image.setAttribute("src", src);
  }
  $("confusion-matrix-link").setAttribute("href", src);
}

function setMatrixMissing(missing) {
  $("confusion-matrix-link").hidden = missing;
  $("confusion-matrix-missing").hidden = !missing;
}

function renderMeasure(id, now, before, format, formatDelta) {
  const current = numberOrNull(now);
  const earlier = numberOrNull(before);
  $(id).textContent = current === null ? "—" : format(current);
  $(`${id}-previous`).textContent = earlier === null ? "—" : format(earlier);
  const cell = $(`${id}-delta`);
  const difference = current !== null && earlier !== null ? current - earlier : null;
  cell.textContent = difference === null ? "—" : formatDelta(difference);
  cell.className = `delta ${difference === null ? "" : deltaClass(difference)}`.trim();
}

function f1Of(scores) {
  return isPlainObject(scores) ? numberOrNull(scores["f1-score"]) : null;
}

/** One row per intent, weakest F1 first; F1 changes against the previous model are marked. */
function renderIntentTable(intents, previousIntents) {
  const names = Object.keys(intents).filter((name) => isPlainObject(intents[name]));
  names.sort((a, b) => (f1Of(intents[a]) ?? -1) - (f1Of(intents[b]) ?? -1) || a.localeCompare(b));
  const rows = names.map((name) => {
    const scores = intents[name];
    const f1 = f1Of(scores);
    const before = previousIntents ? previousIntents[name] : undefined;
    const previousF1 = f1Of(before);
    const row = el("tr", { attrs: { "data-intent": name } });
    let previousCell;
    if (previousIntents && !isPlainObject(before)) {
      row.classList.add("new");
      previousCell = el("td", { className: "num previous", text: "new" });
    } else if (f1 !== null && previousF1 !== null && Math.abs(f1 - previousF1) > 1e-9) {
      const difference = f1 - previousF1;
      row.classList.add(deltaClass(difference));
      previousCell = el("td", { className: "num previous" }, [
        formatScore(previousF1, 2),
        " ",
        el("span", { className: "delta", text: `(${signed(difference, 3)})` }),
      ]);
    } else {
      previousCell = el("td", { className: "num previous muted", text: previousIntents ? "same" : "—" });
    }
    const support = scores.support;
    row.append(
      el("th", { attrs: { scope: "row" } }, [wrappableName(name)]),
      el("td", { className: "num", text: formatScore(scores.precision, 2) }),
      el("td", { className: "num", text: formatScore(scores.recall, 2) }),
      el("td", { className: "num f1", text: formatScore(f1, 2) }),
      previousCell,
      el("td", { className: "num", text: Number.isFinite(Number(support)) && support !== null ? String(support) : "—" }),
    );
    return row;
  });
  // Intents the previous model had and this one has not.
  if (previousIntents) {
    for (const name of Object.keys(previousIntents).sort()) {
      if (Object.prototype.hasOwnProperty.call(intents, name) || !isPlainObject(previousIntents[name])) continue;
      rows.push(el("tr", { className: "removed", attrs: { "data-intent": name } }, [
        el("th", { attrs: { scope: "row" } }, [wrappableName(name)]),
        el("td", { className: "num muted", text: "—" }),
        el("td", { className: "num muted", text: "—" }),
        el("td", { className: "num f1 muted", text: "gone" }),
        el("td", { className: "num previous", text: formatScore(f1Of(previousIntents[name]), 2) }),
        el("td", { className: "num muted", text: "—" }),
      ]));
    }
  }
  const body = $("report-table").tBodies[0];
  if (rows.length === 0) {
    body.replaceChildren(el("tr", {}, [el("td", { className: "muted", text: "The report lists no intents.", attrs: { colspan: "6" } })]));
  } else {
    body.replaceChildren(...rows);
  }
}

// ---------------------------------------------------------------- start

function start() {
  if (document.body.dataset.page === "trainer") initTrainerPage();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
