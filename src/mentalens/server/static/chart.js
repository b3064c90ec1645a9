// mentalens web app: the feelings timeline as an inline SVG line chart (no library, works offline),
// with a text legend and a data table for screen readers.
"use strict";

const FeelingsChart = (() => {
  // Okabe-Ito palette (distinguishable with colour-vision deficiencies) + dash patterns as a second cue
  const COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00"];
  const DASHES = ["", "6 3", "2 3", "8 3 2 3", "4 4"];
  const RISK_COLORS = { none: "#9a9a9a", low: "#E69F00", moderate: "#D55E00", high: "#b3001b", imminent: "#6d0010" };
  const NS = "http://www.w3.org/2000/svg";

  function el(name, attrs, text) {
    const node = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function render(container, timeline) {
    const series = (timeline && timeline.series) || {};
    const risk = (timeline && timeline.risk) || [];
    const labels = Object.keys(series);
    const n = risk.length;
    container.replaceChildren();
    if (!n) {
      const p = document.createElement("p");
      p.className = "empty";
      p.textContent = "Your feelings over the conversation will appear here after your first message.";
      container.append(p);
      return;
    }
    const W = 320, H = 190, L = 30, R = 10, T = 10, B = 40;
    const x = (i) => L + (n === 1 ? (W - L - R) / 2 : (i * (W - L - R)) / (n - 1));
    const y = (v) => T + (1 - v) * (H - T - B);
    const summary = labels.length
      ? "Emotion scores for each of your " + n + " messages: " + labels.join(", ") + "."
      : "No clear emotions detected yet in your " + n + " message" + (n > 1 ? "s" : "") + ".";
    const svg = el("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-labelledby": "chart-title chart-desc" });
    svg.append(el("title", { id: "chart-title" }, "Feelings timeline"));
    svg.append(el("desc", { id: "chart-desc" }, summary));
    for (const v of [0, 0.5, 1]) {
      svg.append(el("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
      svg.append(el("text", { x: L - 4, y: y(v) + 3, "text-anchor": "end" }, v.toFixed(1)));
    }
    svg.append(el("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }));
    svg.append(el("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
    labels.forEach((label, k) => {
      const values = series[label];
      const color = COLORS[k % COLORS.length];
      const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      const g = el("g", { "data-emotion": label });
      if (n > 1) g.append(el("polyline", { points: pts, fill: "none", stroke: color, "stroke-width": 2.5,
                                           "stroke-dasharray": DASHES[k % DASHES.length] }));
      values.forEach((v, i) => g.append(el("circle", { cx: x(i), cy: y(v), r: 3.5, fill: color })));
      svg.append(g);
    });
    // turn numbers and the risk level of each turn under the axis
    risk.forEach((level, i) => {
      svg.append(el("text", { x: x(i), y: H - B + 13, "text-anchor": "middle" }, String(i + 1)));
      svg.append(el("rect", { x: x(i) - 6, y: H - B + 18, width: 12, height: 8, rx: 2,
                              fill: RISK_COLORS[level] || RISK_COLORS.none, "data-risk": level }));
    });
    svg.append(el("text", { x: L, y: H - 3 }, "message · risk:"));
    container.append(svg);

    const legend = document.createElement("ul");
    legend.className = "legend";
    labels.forEach((label, k) => {
      const li = document.createElement("li");
      const sw = document.createElement("span");
      sw.className = "swatch";
      sw.style.background = COLORS[k % COLORS.length];
      sw.setAttribute("aria-hidden", "true");
      li.append(sw, label);
      legend.append(li);
    });
    container.append(legend);

    // the same numbers as a table (for screen readers and anyone who prefers numbers)
    const details = document.createElement("details");
    const summaryEl = document.createElement("summary");
    summaryEl.textContent = "Show as a table";
    const table = document.createElement("table");
    const head = table.createTHead().insertRow();
    for (const h of ["Message", ...labels, "Risk"]) {
      const th = document.createElement("th");
      th.scope = "col";
      th.textContent = h;
      head.append(th);
    }
    const body = table.createTBody();
    risk.forEach((level, i) => {
      const row = body.insertRow();
      const th = document.createElement("th");
      th.scope = "row";
      th.textContent = String(i + 1);
      row.append(th);
      for (const label of labels) row.insertCell().textContent = series[label][i].toFixed(2);
      row.insertCell().textContent = level;
    });
    details.append(summaryEl, table);
    container.append(details);
  }

  return { render };
})();
