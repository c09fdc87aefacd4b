// The chat client: history over HTTP, then one WebSocket to /ws/chat on the same host.
"use strict";

const log = document.getElementById("log");
const statusLine = document.getElementById("status");
const joinForm = document.getElementById("join");
const sayForm = document.getElementById("say");
const text = document.getElementById("text");
let socket = null;
let joinedAs = null; // the name of the last join, for a page restored from the cache

function show(event, extra) {
  const item = document.createElement("li");
  item.className = event.type + (extra ? " " + extra : "");
  item.dataset.name = event.name;
  if (event.type === "message") {
    item.textContent = event.name + ": " + event.text;
  } else {
    item.textContent = event.name + (event.type === "join" ? " joined" : " left")
      + " (" + event.online + " online)";
  }
  log.append(item);
  log.scrollTop = log.scrollHeight;
}

// ws://host/ws/chat from http://host/..., wss:// from https://
function chatURL(name) {
  const url = new URL("/ws/chat", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (name) url.searchParams.set("name", name);
  return url;
}

function setConnected(connected) {
  text.disabled = !connected;
  document.getElementById("send").disabled = !connected;
}

function join(name) {
  if (socket) socket.close(1000, "rejoining");
  joinedAs = name;
  statusLine.textContent = "connecting";
  const ws = new WebSocket(chatURL(name));
  socket = ws;
  ws.onopen = () => { statusLine.textContent = "connected"; setConnected(true); text.focus(); };
  ws.onmessage = (message) => show(JSON.parse(message.data));
  ws.onclose = (close) => {
    if (socket !== ws) return; // an earlier connection, replaced by a rejoin
    statusLine.textContent = "closed (" + close.code + ")";
    setConnected(false);
  };
}

joinForm.addEventListener("submit", (event) => {
  event.preventDefault();
  join(document.getElementById("name").value);
});

sayForm.addEventListener("submit", (event) => {
  event.preventDefault();
  if (socket && socket.readyState === WebSocket.OPEN && text.value) {
    socket.send(text.value);
    text.value = "";
  }
});

// Leaving the page leaves the chat. Without this a browser may keep the page, and its open
// socket, in its back/forward cache: the others would not see the leave.
addEventListener("pagehide", () => { if (socket) socket.close(1000, "page closed"); });
addEventListener("pageshow", (event) => { if (event.persisted && joinedAs !== null) join(joinedAs); });

// The history first, then (with ?name=NAME in the address) join at once, so live
// messages come after the old ones.
const asked = new URLSearchParams(location.search).get("name");
fetch("/api/messages")
  .then((response) => response.json())
  .then((messages) => messages.forEach((message) => show(message, "history")))
  .catch(() => { statusLine.textContent = "could not read the history"; })
  .finally(() => {
    if (asked !== null) {
      document.getElementById("name").value = asked;
      join(asked);
    }
  });
