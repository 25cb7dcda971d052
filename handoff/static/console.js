/* Helpers the agent and trainer consoles share. Loaded before agent.js or trainer.js; every
   text from the server goes into the page through textContent (el) or as the elements and text
   nodes markdown.js builds, never as HTML. */
"use strict";

const API_ROOT = "/api/v1";

/* Bot, agent and system lines are Markdown (the knowledge base's **bold**, lists, links), drawn
   by the gateway's markdown.js with the vendored markdown-it, both loaded before this file. */
const renderMarkdown = (() => {
  try {
    return window.HarborLaneMarkdown.create(window.markdownit, {});
  } catch {
    return null; // not loaded: the lines show as plain text
  }
})();

/** A response's body: parsed JSON, aiohttp's plain-text refusals (bad JSON, text too long, no
    such route) trimmed, or null. */
async function readBody(response) {
  const text = await response.text();
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    const type = response.headers.get("Content-Type") || "";
    return type.startsWith("text/plain") ? text.trim().slice(0, 500) : null;
  }
}

/** Sends `body` as JSON to the API; returns [response, readBody(response)]. When the server
    cannot be reached, throws an Error whose status is 0. */
async function sendJson(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (method !== "GET" && method !== "HEAD") {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body === undefined ? {} : body);
  }
  let response;
  try {
    response = await fetch(API_ROOT + path, options);
  } catch {
    const failure = new Error("The server cannot be reached. Check your connection.");
    failure.status = 0;
    throw failure;
  }
  return [response, await readBody(response)];
}

function $(id) {
  return document.getElementById(id);
}

function el(tag, { className, text, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, String(value));
  }
  for (const child of children) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

/** A transcript line's text: what a customer typed exactly as typed, anything else as Markdown. */
function messageText(author, text, className) {
  const node = el("div", { className: `${className} rich` });
  if (author === "customer" || !renderMarkdown) {
    node.textContent = text;
    return node;
  }
  try {
    node.append(renderMarkdown(text));
  } catch {
    node.textContent = text;
  }
  return node;
}

function isPlainObject(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** Milliseconds since the epoch, or NaN. */
function parseTime(value) {
  if (typeof value !== "string" || value === "") return NaN;
  // Python may send microseconds; some engines only parse milliseconds.
  let text = value.trim().replace(/(\.\d{3})\d+/, "$1");
  // Times are stored in UTC: a timestamp without an offset would otherwise be read as local time.
  if (/T\d/.test(text) && !/(Z|[+-]\d{2}:?\d{2})$/i.test(text)) text += "Z";
  return Date.parse(text);
}

function formatTime(value) {
  const time = parseTime(value);
  if (Number.isNaN(time)) return "";
  const date = new Date(time);
  const today = date.toDateString() === new Date().toDateString();
  const options = today
    ? { hour: "2-digit", minute: "2-digit" }
    : { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" };
  return date.toLocaleString([], options);
}

function timeElement(value) {
  const node = el("time", { text: formatTime(value) });
  if (typeof value === "string") {
    node.dateTime = value;
    const time = parseTime(value);
    if (!Number.isNaN(time)) node.title = new Date(time).toLocaleString();
  }
  return node;
}

/** The server's explanation: {"error": {"message": "..."}}, {"error": "..."} or plain text. */
function errorText(data, fallback) {
  const error = isPlainObject(data) ? data.error : data;
  if (typeof error === "string" && error.trim()) return error.trim();
  if (isPlainObject(error) && typeof error.message === "string" && error.message.trim()) return error.message.trim();
  return fallback;
}

function clearError() {
  $("error").textContent = "";
}

/** Buttons as a list of their titles; any other rich content as JSON text. */
function renderPayload(payload) {
  const nodes = [];
  const { buttons, attachment, kind, ...rest } = payload;
  if (Number.isInteger(attachment)) {
    // A photo the customer sent, served by the API to logged-in agents only.
    const src = `${API_ROOT}/attachments/${attachment}`;
    const image = el("img", { attrs: { alt: "Photo sent by the customer", src } });
    nodes.push(el("a", { className: "attachment", attrs: { href: src, target: "_blank", rel: "noopener" } }, [image]));
  }
  if (Array.isArray(buttons) && buttons.length > 0) {
    const list = el("ul", { className: "buttons", attrs: { "aria-label": "Buttons offered" } });
    for (const button of buttons) {
      const title = isPlainObject(button) ? button.title ?? button.payload : button;
      const entry = el("li", { text: typeof title === "string" ? title : JSON.stringify(title) });
      if (isPlainObject(button) && typeof button.payload === "string") entry.title = button.payload;
      list.append(entry);
    }
    nodes.push(list);
  }
  if (Object.keys(rest).length > 0) nodes.push(el("pre", { className: "payload", text: JSON.stringify(rest, null, 2) }));
  return nodes;
}
