// mentalens web app: the chat page. Streams replies from /v1/chat/completions within a server-side session,
// shows the risk banner when the safety layer flags risk, and draws the feelings timeline.
"use strict";

(() => {
  const SESSION = "mentalens.sessionId";
  const $ = (id) => document.getElementById(id);
  const messages = $("messages");
  const input = $("composer-input");
  const send = $("send");
  const status = $("status");
  const announcer = $("announcer");
  let model = "mentalens";
  let sessionId = sessionStorage.getItem(SESSION);
  let busy = false;

  function setStatus(text) { status.textContent = text; }

  function addMessage(role, text) {
    $("empty")?.remove();
    const li = document.createElement("li");
    li.className = "msg " + role;
    const who = document.createElement("span");
    who.className = "who";
    who.textContent = role === "user" ? "You" : role === "assistant" ? "mentalens (AI)" : "Problem";
    const body = document.createElement("span");
    body.className = "body";
    body.textContent = text;
    li.append(who, body);
    messages.append(li);
    li.scrollIntoView({ block: "end" });
    return li;
  }

  async function newSession() {
    const s = await ML.api("POST", "/v1/sessions", {});
    sessionId = s.id;
    sessionStorage.setItem(SESSION, sessionId);
    return s;
  }

  async function restore() {
    if (!sessionId) return newSession();
    try {
      const s = await ML.api("GET", "/v1/sessions/" + encodeURIComponent(sessionId));
      for (const t of s.turns) { addMessage("user", t.user); addMessage("assistant", t.reply); }
      FeelingsChart.render($("chart"), s.timeline);
      return s;
    } catch (e) {
      if (e.status === 404) return newSession(); // the server restarted or the session was deleted
      throw e;
    }
  }

  async function refreshTimeline() {
    try {
      const t = await ML.api("GET", "/v1/sessions/" + encodeURIComponent(sessionId) + "/timeline");
      FeelingsChart.render($("chart"), t);
    } catch (e) { /* the chart is a bonus; the conversation goes on */ }
  }

  async function submit() {
    const text = input.value.trim();
    if (!text || busy) {
      if (!text) { setStatus("Type a message first."); input.focus(); }
      return;
    }
    busy = true;
    send.disabled = true;
    input.value = "";
    addMessage("user", text);
    const reply = addMessage("assistant", "");
    reply.setAttribute("aria-busy", "true");
    const body = reply.querySelector(".body");
    setStatus("mentalens is writing…");
    let final = null;
    let chunks = 0;
    try {
      await ML.streamSSE("/v1/chat/completions",
        { model, stream: true, session_id: sessionId, messages: [{ role: "user", content: text }] },
        (chunk) => {
          if (chunk.error) throw new Error(chunk.error.message);
          const choice = chunk.choices && chunk.choices[0];
          if (choice && choice.delta && choice.delta.content) {
            body.textContent += choice.delta.content;
            reply.dataset.chunks = String(++chunks);
            reply.scrollIntoView({ block: "end" });
          }
          if (chunk.mentalens) final = chunk.mentalens;
        });
      reply.removeAttribute("aria-busy");
      announcer.textContent = "mentalens says: " + body.textContent;
      setStatus("");
      if (final) {
        if (final.risk && final.risk.requires_escalation) ML.showBanner(final.risk, final.escalation_text);
        await refreshTimeline();
      }
    } catch (e) {
      reply.removeAttribute("aria-busy");
      if (e.status === 404 && /session/.test(e.message)) { await newSession(); }
      if (!body.textContent) reply.remove();
      addMessage("error", "Your message could not be answered: " + e.message);
      setStatus("Something went wrong; you can try again.");
      input.value = input.value || text;
    } finally {
      busy = false;
      send.disabled = false;
      input.focus();
    }
  }

  async function endSession() {
    if (sessionId) {
      try { await ML.api("DELETE", "/v1/sessions/" + encodeURIComponent(sessionId)); } catch (e) { /* gone */ }
    }
    sessionStorage.removeItem(SESSION);
    messages.replaceChildren();
    FeelingsChart.render($("chart"), null);
    $("risk-banner").hidden = true;
    await newSession();
    setStatus("The conversation was deleted. You can start again.");
    input.focus();
  }

  async function start() {
    const h = await ML.getHealth();
    if (h.disclosure) $("disclosure").textContent = h.disclosure;
    if (h.not_a_diagnosis) $("not-a-diagnosis").textContent = h.not_a_diagnosis;
    model = (h.models && h.models[0]) || model;
    await ML.ensureKey();
    await restore();
    if (!messages.querySelector(".msg")) FeelingsChart.render($("chart"), null);
    document.body.dataset.ready = "true";
  }

  $("composer").addEventListener("submit", (ev) => { ev.preventDefault(); submit(); });
  input.addEventListener("keydown", (ev) => {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); submit(); }
  });
  $("end").addEventListener("click", endSession);
  start().catch((e) => { addMessage("error", "Could not start: " + e.message); });
})();
