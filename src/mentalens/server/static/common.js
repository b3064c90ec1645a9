// mentalens web app: shared helpers (API calls, API key, server-sent events, the risk banner).
"use strict";

const ML = (() => {
  const KEY = "mentalens.apiKey";
  let health = null;

  function apiKey() { return sessionStorage.getItem(KEY) || ""; }
  function setApiKey(k) { if (k) sessionStorage.setItem(KEY, k); else sessionStorage.removeItem(KEY); }

  function headers(json = true) {
    const h = {};
    if (json) h["Content-Type"] = "application/json";
    const k = apiKey();
    if (k) h["Authorization"] = "Bearer " + k;
    return h;
  }

  async function errorMessage(res) {
    try {
      const body = await res.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (e) { /* not JSON */ }
    return "the server answered " + res.status;
  }

  async function api(method, path, body) {
    const res = await fetch(path, {
      method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) {
      const err = new Error(await errorMessage(res));
      err.status = res.status;
      throw err;
    }
    return res.json();
  }

  async function getHealth() {
    if (!health) {
      const res = await fetch("/healthz");
      health = await res.json();
    }
    return health;
  }

  // POST and read an OpenAI-style SSE stream; onChunk(obj) per `data:` JSON, resolves at [DONE].
  async function streamSSE(path, body, onChunk, signal) {
    const res = await fetch(path, { method: "POST", headers: headers(true), body: JSON.stringify(body), signal });
    if (!res.ok) {
      const err = new Error(await errorMessage(res));
      err.status = res.status;
      throw err;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        for (const line of event.split("\n")) {
          if (!line.startsWith("data:")) continue;
          const data = line.slice(5).trim();
          if (data === "[DONE]") return;
          onChunk(JSON.parse(data));
        }
      }
    }
  }

  // The key box: shown when the server requires an API key and none is stored for this tab.
  async function ensureKey() {
    const h = await getHealth();
    const box = document.getElementById("key-box");
    if (!h.auth_required || apiKey() || !box) return;
    box.hidden = false;
    const input = document.getElementById("key-input");
    input.focus();
    await new Promise((resolve) => {
      document.getElementById("key-form").addEventListener("submit", (ev) => {
        ev.preventDefault();
        setApiKey(input.value.trim());
        box.hidden = true;
        resolve();
      });
    });
  }

  // The risk banner: mentalens' own crisis text and resources, whatever the model said.
  function showBanner(risk, text) {
    const banner = document.getElementById("risk-banner");
    if (!banner || !risk || !risk.requires_escalation) return;
    const p = document.getElementById("risk-text");
    p.textContent = text || "It sounds like things are really hard right now. Help is available.";
    const list = document.getElementById("risk-resources");
    list.replaceChildren();
    for (const r of risk.resources || []) {
      const li = document.createElement("li");
      const name = document.createElement("strong");
      name.textContent = r.name;
      li.append(name);
      if (r.phone) {
        li.append(": call ");
        const a = document.createElement("a");
        a.href = "tel:" + String(r.phone).replace(/[^0-9+]/g, "");
        a.textContent = r.phone;
        li.append(a);
      }
      if (r.sms) li.append(", text " + r.sms);
      if (r.url) {
        li.append(" ");
        const a = document.createElement("a");
        a.href = r.url;
        a.rel = "noopener noreferrer";
        a.target = "_blank";
        a.textContent = r.url.replace(/^https?:\/\//, "");
        li.append(a);
      }
      list.append(li);
    }
    banner.dataset.level = risk.level;
    banner.hidden = false;
  }

  return { api, apiKey, setApiKey, ensureKey, getHealth, streamSSE, showBanner };
})();
