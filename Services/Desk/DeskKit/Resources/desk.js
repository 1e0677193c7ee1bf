// Baton desk: the agent's screen. Briefs arrive over the WebSocket at /ws (one BriefUpdate per message, protobuf
// JSON); every action is a POST to /api/handoffs/{id}/<action>. Brief text is only ever inserted as text
// (textContent), never as HTML. A revision is acknowledged (AckBrief) only after the browser has painted it.
"use strict";

const $ = (id) => document.getElementById(id);

const state = {
  me: null,
  briefs: new Map(),     // handoff id -> brief, in arrival order
  whispers: new Map(),   // handoff id -> the whisper text
  handoffs: new Map(),   // handoff id -> the last Handoff an action returned
  fresh: new Set(),      // handoff ids that arrived since they were last looked at
  selected: null,
  shown: null,           // "id#revision" on screen
  acked: new Set(),      // "id#revision" acknowledged
  socket: null,
  retryMs: 500,
  audio: null,
};

const reasons = {
  REASON_REROUTED: "it went to another destination",
  REASON_CALLER_HUNG_UP: "the caller hung up",
  REASON_HANDED_BACK: "it was handed back to the AI",
  REASON_CALL_CLOSED: "the call ended",
  REASON_NOT_STORED: "Baton could not store the handoff (it comes back if the AI tries again)",
};

const states = {
  STATE_OFFERED: "Offered",
  STATE_ACCEPTED: "Accepted",
  STATE_CONNECTED: "Connected",
  STATE_GREETED: "Greeted",
  STATE_HANDED_BACK: "Handed back",
  STATE_NO_DESTINATION: "No destination",
  STATE_ENDED: "Ended",
};

// An element with text children only: strings become text nodes.
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

function label(slot) {
  return slot.replace(/[._]/g, " ");
}

async function api(method, path, body) {
  let response;
  try {
    response = await fetch(path, {
      method,
      credentials: "same-origin",
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (error) {
    const failure = new Error("the desk does not answer (" + error.message + ")");
    failure.status = 0;
    throw failure;
  }
  let data = null;
  try {
    data = await response.json();
  } catch (_) {
    data = null;
  }
  if (!response.ok) {
    const failure = new Error(data && data.message ? data.message : response.status + " " + response.statusText);
    failure.status = response.status;
    throw failure;
  }
  return data;
}

// MARK: - Signing in

async function start() {
  $("sign-in-form").addEventListener("submit", signIn);
  $("sign-out").addEventListener("click", signOut);
  $("sound").addEventListener("change", () => {
    if ($("sound").checked && !state.audio && window.AudioContext) state.audio = new AudioContext();
  });
  wireActions();
  setInterval(tick, 1000);
  try {
    state.me = await api("GET", "/api/me");
    signedIn();
  } catch (_) {
    showSignIn();
  }
}

function showSignIn() {
  state.me = null;
  if (state.socket) {
    const socket = state.socket;
    state.socket = null;
    socket.close();
  }
  $("workspace").hidden = true;
  $("sign-out").hidden = true;
  $("ops-link").hidden = true;
  $("who").textContent = "";
  setConnection("offline", "Not connected");
  $("sign-in").hidden = false;
  $("agent-id").focus();
}

async function signIn(event) {
  event.preventDefault();
  $("sign-in-error").textContent = "";
  try {
    state.me = await api("POST", "/api/session", { agentId: $("agent-id").value, token: $("agent-token").value });
    $("agent-token").value = "";
    signedIn();
  } catch (error) {
    $("sign-in-error").textContent = "Could not sign in: " + error.message;
  }
}

async function signOut() {
  try {
    await api("DELETE", "/api/session");
  } catch (_) {
    // Signed out here whatever the desk said.
  }
  state.briefs.clear();
  showSignIn();
}

function signedIn() {
  $("sign-in").hidden = true;
  $("workspace").hidden = false;
  $("sign-out").hidden = false;
  $("ops-link").hidden = state.me.role !== "supervisor";
  $("who").textContent = state.me.name + (state.me.destination ? " · " + state.me.destination : "");
  if (state.me.destination) {
    connect();
  } else {
    notice("You have no destination, so no briefs come here. The operations dashboard is at /ops.");
  }
  render();
}

// MARK: - The live channel

function setConnection(kind, text) {
  const node = $("connection");
  node.dataset.state = kind;
  node.textContent = text;
}

function connect() {
  setConnection(state.retryMs > 500 ? "reconnecting" : "connecting", state.retryMs > 500 ? "Reconnecting…" : "Connecting…");
  const socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws");
  state.socket = socket;
  socket.addEventListener("message", (event) => {
    if (state.socket === socket) receive(JSON.parse(event.data));
  });
  socket.addEventListener("close", () => {
    if (state.socket !== socket) return;
    state.socket = null;
    setConnection("reconnecting", "Reconnecting…");
    retry();
  });
}

// After a close: sign in again if the session has ended, else connect again, waiting a little longer each time.
async function retry() {
  const delay = state.retryMs;
  state.retryMs = Math.min(state.retryMs * 2, 4000);
  await new Promise((resolve) => setTimeout(resolve, delay));
  if (!state.me) return;
  try {
    await api("GET", "/api/me");
  } catch (error) {
    if (error.status === 401) {
      showSignIn();
      $("sign-in-error").textContent = "Your session has ended: " + error.message;
      return;
    }
  }
  if (state.me && !state.socket) connect();
}

function receive(message) {
  if (message.status === "live") {
    // The open briefs follow: they replace what the screen held before the connection dropped.
    state.retryMs = 500;
    state.briefs.clear();
    state.whispers.clear();
    setConnection("live", "Connected");
    render();
    return;
  }
  const brief = message.brief;
  if (!brief || !brief.handoffId) return;
  const id = brief.handoffId;
  if (message.kind === "KIND_WITHDRAWN") {
    state.briefs.delete(id);
    state.fresh.delete(id);
    if (state.selected === id) state.selected = null;
    notice("The brief for " + (brief.callerName || "a caller") + " was withdrawn: " + (reasons[message.reason] || "no reason given") + ".");
    render();
    return;
  }
  const known = state.briefs.has(id);
  state.briefs.set(id, brief);
  state.whispers.set(id, message.whisper || "");
  if (message.kind === "KIND_NEW" || (!known && message.kind === "KIND_OPEN" && !state.acked.has(id + "#" + brief.revision))) {
    state.fresh.add(id);
    alertAgent();
  }
  if (!state.selected || !state.briefs.has(state.selected)) state.selected = id;
  render();
}

function alertAgent() {
  document.title = "(" + state.briefs.size + ") Baton desk";
  if ($("sound").checked && state.audio) {
    const oscillator = state.audio.createOscillator();
    const gain = state.audio.createGain();
    oscillator.frequency.value = 880;
    gain.gain.value = 0.15;
    oscillator.connect(gain).connect(state.audio.destination);
    oscillator.start();
    oscillator.stop(state.audio.currentTime + 0.25);
  }
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = !text;
}

// MARK: - Rendering

function render() {
  if (!state.briefs.has(state.selected)) state.selected = state.briefs.size ? state.briefs.keys().next().value : null;
  renderQueue();
  const brief = state.selected ? state.briefs.get(state.selected) : null;
  $("brief").hidden = !brief;
  $("brief-empty").hidden = !!brief;
  if (!brief) {
    state.shown = null;
    document.title = "Baton desk";
    return;
  }
  renderBrief(brief);
  // For anyone checking the proof of display: what is on screen, and since when (the acknowledgement follows).
  const article = $("brief");
  if (article.dataset.handoff !== brief.handoffId || article.dataset.revision !== String(brief.revision)) {
    article.dataset.handoff = brief.handoffId;
    article.dataset.revision = String(brief.revision);
    article.dataset.renderedAt = String(Date.now());
  }
  acknowledgeAfterPaint(brief);
}

function renderQueue() {
  const list = $("queue");
  clear(list);
  $("queue-empty").hidden = state.briefs.size > 0;
  for (const [id, brief] of state.briefs) {
    const button = el("button", "", el("strong", "", brief.callerName || "Unknown caller"), el("br"), brief.category + " · " + (brief.priority || "normal"));
    button.type = "button";
    button.setAttribute("aria-current", id === state.selected ? "true" : "false");
    button.addEventListener("click", () => {
      state.selected = id;
      render();
    });
    list.append(el("li", state.fresh.has(id) ? "fresh" : "", button));
  }
}

function renderBrief(brief) {
  const changed = new Set(Number(brief.revision) > 1 ? brief.changed || [] : []);
  const mark = (node, key) => node.classList.toggle("changed", changed.has(key));
  $("b-category").textContent = (brief.undesigned ? "Undesigned escalation: " : "") + (brief.category || "handoff");
  $("b-priority").textContent = brief.priority || "normal";
  $("b-priority").className = "badge " + (brief.priority || "normal");
  const handoff = state.handoffs.get(brief.handoffId);
  $("b-state").textContent = handoff ? states[handoff.state] || "" : "Offered";
  $("b-why").textContent = (brief.gateId ? "Gate " + brief.gateId + ": " : "") + (brief.why || "");

  const facts = new Map((brief.facts || []).map((fact) => [fact.slot, fact]));
  const lead = $("b-lead");
  clear(lead);
  for (const slot of brief.briefLead || []) {
    const fact = facts.get(slot);
    const value = el("dd", fact && fact.confirmed ? "confirmed" : "", fact ? fact.value : "Ask for it");
    const item = el("div", fact ? "" : "missing", el("dt", "", label(slot)), value);
    item.dataset.slot = slot;
    mark(item, "facts." + slot);
    lead.append(item);
  }

  $("b-caller").textContent = [brief.callerName || "Name not captured", brief.phoneMasked, brief.language].filter(Boolean).join(" · ");
  mark($("b-caller"), "caller_name");
  const verified = $("b-verified");
  verified.textContent = brief.verified ? "Verified by " + (brief.verificationMethod || "an unnamed method") : "Not verified";
  verified.className = "verified " + (brief.verified ? "yes" : "no");
  mark(verified, "verified");
  $("b-intents").textContent = (brief.intents || []).map(label).join(", ") + (brief.currentStep ? " (step: " + label(brief.currentStep) + ")" : "") || "Not detected";
  mark($("b-intents"), "intents");
  $("b-next").textContent = brief.proposedNextStep || "None proposed";
  mark($("b-next"), "proposed_next_step");

  const ask = $("b-ask");
  clear(ask);
  for (const slot of brief.missing || []) ask.append(el("li", "", label(slot)));
  $("b-ask-block").hidden = !(brief.missing || []).length;

  const others = $("b-facts");
  clear(others);
  for (const fact of brief.facts || []) {
    if (fact.lead) continue;
    const term = el("dt", "", label(fact.slot));
    const value = el("dd", fact.confirmed ? "confirmed" : "", fact.value);
    mark(value, "facts." + fact.slot);
    others.append(term, value);
  }
  if (!others.firstChild) others.append(el("dd", "quiet", "None"));

  $("b-whisper").textContent = state.whispers.get(brief.handoffId) || "";
  $("b-summary").textContent = brief.aiSummary || "The AI gave no summary.";
  mark($("b-summary"), "ai_summary");
  const turns = $("b-turns");
  clear(turns);
  for (const turn of brief.keyTurns || []) {
    const speaker = turn.speaker === "SPEAKER_AI" ? "AI" : "Caller";
    turns.append(el("li", turn.trigger ? "trigger" : "", el("span", "speaker", speaker + ":"), turn.text));
  }

  const select = $("repeat-slot");
  clear(select);
  for (const fact of brief.facts || []) {
    const option = el("option", "", label(fact.slot) + ": " + fact.value);
    option.value = fact.slot;
    select.append(option);
  }
  tick();
}

// The clock since the gate fired, beside the predicted time to a live human.
function tick() {
  const brief = state.selected ? state.briefs.get(state.selected) : null;
  if (!brief) return;
  const elapsed = Math.max(0, Date.now() - Number(brief.firedAtUnixMs || 0));
  const predicted = Number(brief.predictedLiveHumanMs || 0);
  const seconds = Math.floor(elapsed / 1000);
  const clock = Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  const node = $("b-clock");
  node.textContent = clock + " since the gate fired · predicted live human in " + (predicted / 1000).toFixed(1) + " s";
  node.classList.toggle("late", predicted > 0 && elapsed > predicted);
}

// Acknowledges the revision on screen once it has been painted: the frame callback runs before the paint, and a
// task queued from it runs after.
function acknowledgeAfterPaint(brief) {
  const key = brief.handoffId + "#" + brief.revision;
  state.shown = key;
  if (state.acked.has(key)) return;
  requestAnimationFrame(() => {
    setTimeout(async () => {
      if (state.shown !== key || state.acked.has(key)) return;
      state.acked.add(key);
      state.fresh.delete(brief.handoffId);
      try {
        const handoff = await api("POST", "/api/handoffs/" + encodeURIComponent(brief.handoffId) + "/ack", {
          revision: Number(brief.revision),
          displayedAtUnixMs: String(Date.now()),
        });
        state.handoffs.set(brief.handoffId, handoff);
      } catch (error) {
        state.acked.delete(key);
        $("action-error").textContent = "Could not confirm the brief is on screen: " + error.message;
      }
    }, 0);
  });
}

// MARK: - Actions

function wireActions() {
  const forms = ["form-decline", "form-repeat", "form-hand-back"];
  const open = (id, focus) => {
    for (const form of forms) $(form).hidden = form !== id;
    $(focus).focus();
  };
  $("act-accept").addEventListener("click", () => act("accept", {}, "Accept"));
  $("act-connected").addEventListener("click", () => act("connected", {}, "Connected"));
  $("act-greeted").addEventListener("click", () => act("greeted", {}, "Greeted"));
  $("act-decline").addEventListener("click", () => open("form-decline", "decline-reason"));
  $("act-repeat").addEventListener("click", () => open("form-repeat", "repeat-slot"));
  $("act-hand-back").addEventListener("click", () => open("form-hand-back", "hand-back-outcome"));
  for (const form of forms) {
    $(form).querySelector(".cancel").addEventListener("click", () => ($(form).hidden = true));
  }
  $("form-decline").addEventListener("submit", (event) => {
    event.preventDefault();
    act("decline", { reason: $("decline-reason").value }, "Decline").then((ok) => ($("form-decline").hidden = ok));
  });
  $("form-repeat").addEventListener("submit", (event) => {
    event.preventDefault();
    act("repeat", { slot: $("repeat-slot").value }, "Caller repeated").then((ok) => ($("form-repeat").hidden = ok));
  });
  $("form-hand-back").addEventListener("submit", (event) => {
    event.preventDefault();
    const body = { outcome: $("hand-back-outcome").value, notes: $("hand-back-notes").value };
    act("hand-back", body, "Hand back").then((ok) => ($("form-hand-back").hidden = ok));
  });
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || $("brief").hidden) return;
    if (event.key === "Escape") {
      for (const form of forms) $(form).hidden = true;
      return;
    }
    if (/^(INPUT|TEXTAREA|SELECT)$/.test(event.target.tagName)) return;
    const button = { a: "act-accept", d: "act-decline", c: "act-connected", g: "act-greeted", r: "act-repeat", h: "act-hand-back" }[event.key.toLowerCase()];
    if (button) {
      event.preventDefault();
      $(button).click();
    }
  });
}

// Calls the action on the selected handoff; true when it succeeded, else the error is on screen in words.
async function act(action, body, name) {
  const id = state.selected;
  $("action-error").textContent = "";
  if (!id) return false;
  try {
    const handoff = await api("POST", "/api/handoffs/" + encodeURIComponent(id) + "/" + action, body);
    state.handoffs.set(id, handoff);
    // A brief the action took away (decline, hand back) has already said so, with the reason.
    if (state.briefs.has(id)) {
      notice(name + ": done.");
      renderBrief(state.briefs.get(id));
    }
    return true;
  } catch (error) {
    $("action-error").textContent = name + " failed: " + error.message;
    return false;
  }
}

document.addEventListener("DOMContentLoaded", start);
