// mentalens web app: the analysis page. Sends a pasted post to /v1/analyze, shows per-task readings with
// probabilities, and highlights the evidence sentences of the selected reading in the post.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  let result = null;

  const TASK_NAMES = {
    DR: "Depression", CLP: "Depression (CLPsych)", dreaddit: "Stress", SWMH: "Mental health topic",
    "T-SID": "Suicide and self-harm (type)", SAD: "Cause of stress", CAMS: "Cause of depression",
    loneliness: "Loneliness", MultiWD: "Wellness dimension", IRF: "Interpersonal risk factor",
  };

  function taskName(t) {
    const base = TASK_NAMES[t.task] || t.task;
    return t.aspect ? base + " (" + t.aspect + ")" : base;
  }

  function pct(p) { return Math.round(p * 100) + "%"; }

  function renderPost(key) {
    const post = $("post");
    post.replaceChildren();
    const text = result.text;
    const task = result.tasks[key];
    const ev = (task ? task.evidence : []).filter((e) => e.score > 0).sort((a, b) => a.start - b.start);
    let pos = 0;
    const top = Math.max(0, ...ev.map((e) => e.score));
    for (const e of ev) {
      if (e.start < pos) continue;
      post.append(document.createTextNode(text.slice(pos, e.start)));
      const mark = document.createElement("mark");
      mark.className = "evidence" + (e.score >= top * 0.66 ? " strong" : "");
      mark.textContent = text.slice(e.start, e.end);
      mark.dataset.score = e.score.toFixed(3);
      mark.title = "Evidence for " + taskName(task) + ": " + task.label + " (weight " + e.score.toFixed(2) + ")";
      const sr = document.createElement("span");
      sr.className = "visually-hidden";
      sr.textContent = " (evidence for " + task.label + ")";
      mark.append(sr);
      post.append(mark);
      pos = e.end;
    }
    post.append(document.createTextNode(text.slice(pos)));
    $("evidence-title").textContent = task ? "Evidence for: " + taskName(task) + " — " + task.label : "Post";
    for (const row of $("findings").querySelectorAll("tr")) {
      const on = row.dataset.key === key;
      row.classList.toggle("selected", on);
      row.querySelector("button").setAttribute("aria-pressed", on ? "true" : "false");
    }
  }

  function render(data) {
    result = data;
    const rows = $("findings");
    rows.replaceChildren();
    const keys = Object.keys(data.tasks).sort((a, b) => {
      const pa = data.tasks[a], pb = data.tasks[b];
      const fa = pa.label !== "no" && pa.label !== "none", fb = pb.label !== "no" && pb.label !== "none";
      return (fb - fa) || (pb.probability - pa.probability);
    });
    for (const key of keys) {
      const t = data.tasks[key];
      const tr = document.createElement("tr");
      tr.dataset.key = key;
      const name = document.createElement("td");
      const btn = document.createElement("button");
      btn.type = "button";
      btn.className = "link";
      btn.textContent = taskName(t);
      btn.setAttribute("aria-pressed", "false");
      btn.setAttribute("aria-label", "Show evidence for " + taskName(t));
      btn.addEventListener("click", () => renderPost(key));
      name.append(btn);
      const label = document.createElement("td");
      label.textContent = t.label;
      const prob = document.createElement("td");
      const bar = document.createElement("div");
      bar.className = "bar";
      bar.setAttribute("role", "meter");
      bar.setAttribute("aria-valuemin", "0");
      bar.setAttribute("aria-valuemax", "100");
      bar.setAttribute("aria-valuenow", String(Math.round(t.probability * 100)));
      bar.setAttribute("aria-label", taskName(t) + " probability");
      const fill = document.createElement("span");
      fill.style.width = pct(t.probability);
      bar.append(fill);
      const num = document.createElement("span");
      num.textContent = " " + pct(t.probability);
      prob.append(bar, num);
      tr.append(name, label, prob);
      rows.append(tr);
    }
    const emo = $("emotions");
    emo.replaceChildren();
    const shown = data.emotions.filter((e) => e.detected && e.label !== "neutral").slice(0, 6);
    for (const e of (shown.length ? shown : data.emotions.slice(0, 3))) {
      const li = document.createElement("li");
      li.textContent = e.label + " — " + pct(e.score);
      emo.append(li);
    }
    $("disclaimer").textContent = data.not_a_diagnosis || data.disclaimer || "";
    $("results").hidden = false;
    $("highlighted").hidden = false;
    renderPost(keys[0]);
    if (data.risk && data.risk.requires_escalation) ML.showBanner(data.risk, null);
  }

  $("analyze-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const text = $("post-input").value;
    if (!text.trim()) { $("status").textContent = "Paste a post first."; $("post-input").focus(); return; }
    $("analyze-btn").disabled = true;
    $("status").textContent = "Analysing…";
    try {
      render(await ML.api("POST", "/v1/analyze", { text }));
      $("status").textContent = "Analysis ready: " + Object.keys(result.tasks).length + " readings.";
      document.body.dataset.analyzed = "true";
    } catch (e) {
      $("status").textContent = "Could not analyse: " + e.message;
    } finally {
      $("analyze-btn").disabled = false;
    }
  });
  ML.ensureKey().then(() => { document.body.dataset.ready = "true"; });
})();
