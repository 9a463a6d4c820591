// Lightwire dashboard, the shared part: DOM and SVG builders, number formats, charts, the token tooltip, live polling.
// Plain browser JavaScript with no build step and nothing fetched from elsewhere: the page works offline, and what
// runs is what is in this folder. Text from the analytics is always set as text (textContent), never as markup.
"use strict";

const LW = (() => {
  const boot = JSON.parse(document.getElementById("boot").textContent);
  const SVG_NS = "http://www.w3.org/2000/svg";

  function fill(el, attrs, children) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "text") el.textContent = String(v);
      else if (k === "dataset") Object.assign(el.dataset, v);
      else if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k === "cls" ? "class" : k, v === true ? "" : String(v));
    }
    for (const child of children.flat(Infinity)) {
      if (child === null || child === undefined || child === false) continue;
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return el;
  }
  const h = (tag, attrs, ...children) => fill(document.createElement(tag), attrs, children);
  const s = (tag, attrs, ...children) => fill(document.createElementNS(SVG_NS, tag), attrs, children);

  function num(x, digits = 3) {
    if (x === null || x === undefined || Number.isNaN(x)) return "–";
    if (typeof x !== "number") return String(x);
    if (Number.isInteger(x) && Math.abs(x) < 1e6) return x.toLocaleString("en-US");
    const a = Math.abs(x);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return x.toExponential(2);
    return x.toFixed(a >= 100 ? 1 : digits);
  }
  const pct = (x) => (x === null || x === undefined ? "–" : `${(100 * x).toFixed(1)}%`);
  function when(ms) {
    if (!ms) return "–";
    const d = new Date(ms);
    return d.toLocaleTimeString("en-GB", { hour12: false }) + (Date.now() - ms > 864e5 ? ` ${d.toISOString().slice(0, 10)}` : "");
  }
  function duration(ms) {
    if (ms === null || ms === undefined) return "–";
    return ms < 1000 ? `${Math.round(ms)} ms` : ms < 60000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60000)} min ${Math.round((ms % 60000) / 1000)} s`;
  }
  const rolloutHref = (id) => `/rollouts/${encodeURIComponent(id)}`;
  const rolloutLink = (id) => h("a", { href: rolloutHref(id), cls: "rid" }, id);

  function table(columns, rows, attrs = {}) {
    // columns: [{label, cell(row) -> node|string, cls}]
    return h("table", attrs,
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { cls: c.cls }, c.head || c.label)))),
      h("tbody", {}, rows.map((r) => h("tr", c0(r), columns.map((c) => h("td", { cls: c.cls }, c.cell(r)))))));
  }
  const c0 = (r) => (r && r.__attrs) || {};

  function niceTicks(lo, hi, count = 5) {
    if (lo === hi) { lo -= 0.5; hi += 0.5; }
    const step0 = (hi - lo) / count;
    const mag = 10 ** Math.floor(Math.log10(step0));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) || 10 * mag;
    const ticks = [];
    for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toFixed(10));
    return { lo: Math.min(lo, ticks[0]), hi: Math.max(hi, ticks[ticks.length - 1]), ticks };
  }

  // A chart of series over x: points (with error bars from low..high), lines, or bars. x may be integers (versions,
  // steps) or times (ms). Every point is an element with a class and data attributes, so what is drawn can be read.
  // `dodge` shifts each series a little along x, so error bars of several series at one x stay apart.
  function plot({ series, width = 1180, height = 240, xLabel = "", yLabel = "", xTime = false, integerX = false, yMin, yMax, cls = "", dodge = 0 }) {
    const m = { l: 52, r: 12, t: 12, b: 38 };
    const all = series.flatMap((se) => se.points);
    const box = s("svg", { viewBox: `0 0 ${width} ${height}`, cls: `chart ${cls}`, role: "img", "aria-label": yLabel });
    if (!all.length) {
      box.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", cls: "empty", text: "nothing yet" }));
      return box;
    }
    const xs = all.map((p) => p.x);
    const ys = all.flatMap((p) => [p.y, p.low, p.high]).filter((v) => v !== null && v !== undefined && Number.isFinite(v));
    const bars = series.some((se) => se.bars);
    let x0 = Math.min(...xs), x1 = Math.max(...xs);
    const barW = bars ? (xTime ? 10000 : 1) : 0;
    if (bars) x1 += barW;
    if (integerX && !bars) { x0 -= 0.5; x1 += 0.5; }
    if (x0 === x1) { x0 -= 1; x1 += 1; }
    const yt = niceTicks(yMin !== undefined ? Math.min(yMin, ...ys) : Math.min(...ys), yMax !== undefined ? Math.max(yMax, ...ys) : Math.max(...ys));
    const Xs = (v) => m.l + ((v - x0) / (x1 - x0)) * (width - m.l - m.r);
    const X = Xs;
    const Y = (v) => height - m.b - ((v - yt.lo) / (yt.hi - yt.lo)) * (height - m.t - m.b);
    const axis = s("g", { cls: "axis" });
    for (const t of yt.ticks) {
      axis.append(s("line", { x1: m.l, x2: width - m.r, y1: Y(t), y2: Y(t), cls: "grid" }),
        s("text", { x: m.l - 6, y: Y(t) + 4, "text-anchor": "end", text: num(t, 2) }));
    }
    const xticks = integerX ? [...new Set(xs)].sort((a, b) => a - b) : niceTicks(x0, x1, 5).ticks.filter((t) => t >= x0 && t <= x1);
    const thin = Math.ceil(xticks.length / 12);
    xticks.forEach((t, i) => {
      if (i % thin) return;
      axis.append(s("text", { x: X(t + (bars && integerX ? 0.5 : 0)), y: height - m.b + 16, "text-anchor": "middle", text: xTime ? when(t) : num(t, 2) }));
    });
    axis.append(s("line", { x1: m.l, x2: width - m.r, y1: height - m.b, y2: height - m.b, cls: "base" }),
      s("text", { x: (m.l + width - m.r) / 2, y: height - 4, "text-anchor": "middle", cls: "label", text: xLabel }),
      s("text", { x: 12, y: (m.t + height - m.b) / 2, "text-anchor": "middle", cls: "label", transform: `rotate(-90 12 ${(m.t + height - m.b) / 2})`, text: yLabel }));
    box.append(axis);
    series.forEach((se, k) => {
      const shift = dodge * (k - (series.length - 1) / 2);
      const X = (v) => Xs(v + shift);
      const g = s("g", { cls: `series s${k} ${se.cls || ""}`, dataset: { series: se.name } });
      const pts = se.points.filter((p) => p.y !== null && p.y !== undefined);
      if (se.band) {
        const withBand = pts.filter((p) => p.low !== null && p.low !== undefined);
        if (withBand.length > 1) {
          const up = withBand.map((p) => `${X(p.x)},${Y(p.high)}`), down = withBand.slice().reverse().map((p) => `${X(p.x)},${Y(p.low)}`);
          g.append(s("polygon", { points: [...up, ...down].join(" "), cls: "band" }));
        }
      }
      if (se.line && pts.length > 1) g.append(s("polyline", { points: pts.map((p) => `${X(p.x)},${Y(p.y)}`).join(" "), cls: "line" }));
      for (const p of pts) {
        const tip = p.title || `${num(p.x)}: ${num(p.y)}`;
        if (se.bars) {
          const y0 = Y(Math.max(yt.lo, 0));
          g.append(s("rect", { x: X(p.x) + 1, width: Math.max(1, X(p.x + barW) - X(p.x) - 2), y: Math.min(Y(p.y), y0), height: Math.abs(y0 - Y(p.y)), cls: "bar", dataset: { x: p.x } },
            s("title", { text: tip })));
          continue;
        }
        if (!se.line || se.errorBars) {
          if (p.low !== null && p.low !== undefined && se.errorBars) {
            g.append(s("line", { x1: X(p.x), x2: X(p.x), y1: Y(p.low), y2: Y(p.high), cls: "err" }),
              s("line", { x1: X(p.x) - 4, x2: X(p.x) + 4, y1: Y(p.low), y2: Y(p.low), cls: "err" }),
              s("line", { x1: X(p.x) - 4, x2: X(p.x) + 4, y1: Y(p.high), y2: Y(p.high), cls: "err" }));
          }
        }
        g.append(s("circle", { cx: X(p.x), cy: Y(p.y), r: se.line && !se.errorBars ? 2.5 : 4, cls: `point${p.hollow ? " hollow" : ""}`, dataset: p.data || { x: p.x } },
          s("title", { text: tip })));
      }
      box.append(g);
    });
    return box;
  }

  function legend(items) {
    return h("div", { cls: "legend" }, items.map(([cls, label]) => h("span", { cls: `key ${cls}` }, h("i"), label)));
  }

  // The token tooltip: id, text and logprob of the token under the pointer (and on keyboard focus).
  const tip = document.getElementById("tip");
  function showTip(el) {
    const d = el.dataset;
    tip.replaceChildren(
      h("div", {}, h("b", {}, "token "), d.id),
      h("div", {}, h("b", {}, "text "), h("code", {}, JSON.stringify(d.text === undefined ? null : d.text))),
      h("div", {}, h("b", {}, "logprob "), d.logprob === "" ? "–" : `${Number(d.logprob).toFixed(4)} (p ${Number(d.p).toFixed(3)})`));
    const r = el.getBoundingClientRect();
    tip.hidden = false;
    tip.style.left = `${Math.min(window.innerWidth - tip.offsetWidth - 8, r.left + window.scrollX)}px`;
    tip.style.top = `${r.bottom + window.scrollY + 6}px`;
  }
  for (const ev of ["mouseover", "focusin"]) {
    document.addEventListener(ev, (e) => { const t = e.target.closest && e.target.closest(".tok"); if (t) showTip(t); });
  }
  for (const ev of ["mouseout", "focusout"]) {
    document.addEventListener(ev, (e) => { if (e.target.closest && e.target.closest(".tok")) tip.hidden = true; });
  }

  function banner(error) {
    const el = document.getElementById("banner");
    el.hidden = !error;
    el.textContent = error ? error.message : "";
    el.className = `banner ${error ? error.type || "" : ""}`;
  }

  // Live: ask for this view's figures again every refresh_ms and redraw only when they changed.
  let shown = "";
  let render = () => {};
  async function poll() {
    const dot = document.getElementById("live");
    try {
      const response = await fetch(boot.api + location.search, { headers: { accept: "application/json" }, credentials: "same-origin" });
      const body = await response.json();
      if (!response.ok) {
        banner(body.error || { message: `the dashboard answered ${response.status}` });
        dot.className = "live off";
      } else {
        banner(null);
        dot.className = "live on";
        const text = JSON.stringify(body);
        if (text !== shown) { shown = text; render(body); }
      }
    } catch (err) {
      dot.className = "live off";
      banner({ message: "the dashboard did not answer; retrying", type: "offline" });
    }
  }
  function start(views) {
    render = (data) => {
      const el = document.getElementById("view");
      const next = views[boot.view](data, el);
      if (next) el.replaceChildren(next);
      document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
      // Milliseconds from the start of navigation to the first drawn view (bench/dashboard.py reads it).
      if (window.lwFirstRenderMs === undefined) window.lwFirstRenderMs = performance.now();
    };
    banner(boot.error);
    if (boot.data) { shown = JSON.stringify(boot.data); render(boot.data); }
    else if (views.empty) document.getElementById("view").replaceChildren(views.empty(boot.view));
    setInterval(poll, boot.refresh_ms);
  }
  function reload() { poll(); }

  return { boot, h, s, num, pct, when, duration, table, plot, legend, rolloutLink, rolloutHref, start, reload, banner };
})();
