// Lightwire dashboard, the six views. Each takes its figures (the JSON of /api/<view>) and returns what to show.
"use strict";

(() => {
  const { h, num, pct, when, duration, table, plot, legend, rolloutLink } = LW;
  const card = (label, value, note, attrs = {}) => h("div", { cls: "card", ...attrs }, h("div", { cls: "label" }, label), h("div", { cls: "value" }, value), note ? h("div", { cls: "note" }, note) : null);
  const section = (title, ...body) => h("section", {}, h("h2", {}, title), ...body);
  const SPLIT_CLASS = { train: "train", "held-out": "heldout" };

  function overview(d) {
    const t = d.trainer || {};
    const live = t.live || {};
    const step = live.up ? live.step : t.latest_step && t.latest_step.step;
    const version = live.up ? live.version : t.latest_version && t.latest_version.version;
    const served = (d.served || []).map((r) => h("div", { cls: `replica ${r.up === false ? "down" : ""}` },
      h("b", {}, r.version === null || r.version === undefined ? "–" : `v${r.version}`), " ", r.up === false ? `${r.replica} (not answering)` : r.replica,
      r.source === "latest call" ? h("span", { cls: "note" }, ` latest call ${when(r.at_ms)}`) : null));
    const curveSeries = Object.entries(d.curve || {}).map(([split, points]) => ({
      name: split, cls: SPLIT_CLASS[split] || "other", line: true, errorBars: true,
      points: points.map((p) => ({ x: p.version, y: p.mean, low: p.low, high: p.high, data: { version: p.version, split },
        title: `${split}, version ${p.version}: ${num(p.mean)}${p.se === null ? "" : ` ± ${num(2 * p.se)}`} over ${p.rollouts} rollouts` })),
    }));
    return h("div", { cls: "overview" },
      h("div", { cls: "cards" },
        card("calls / s", num(d.calls.per_s, 2), "last minute", { id: "calls-rate" }),
        card("rollouts / s", num(d.rollouts.per_s, 2), "last minute", { id: "rollouts-rate" }),
        card("failed calls / s", num(d.call_failures.per_s, 2), "last minute"),
        card("rollouts with an error", pct(d.totals.rollouts ? d.totals.rollouts_with_errors / d.totals.rollouts : null),
          `${num(d.totals.rollouts_with_errors)} of ${num(d.totals.rollouts)}`),
        card("inference serves", served.length ? served : "–", null, { id: "served" }),
        card("trainer", step === undefined || step === null ? "–" : `step ${step}`, step === undefined || step === null ? "no step yet" : `version ${version || (t.latest_step && t.latest_step.version) || "–"}${live.up ? "" : " (from the analytics)"}`, { id: "trainer" })),
      section("Learning curve: reward by weight version",
        legend(curveSeries.map((se) => [se.cls, se.name])),
        plot({ series: curveSeries, integerX: true, dodge: 0.12, xLabel: "weight version", yLabel: "reward (mean ± 2 s.e.)", cls: "curve", width: 1180, height: 320 }),
        h("p", { cls: "note" }, "A rollout counts under the newest version that served any of its calls; held-out rollouts are never trained on.")),
      h("div", { cls: "pair" },
        section("Calls per second", plot({ series: [{ name: "calls", bars: true, points: d.calls.series.map((b) => ({ x: b.t_ms, y: b.per_s, title: `${when(b.t_ms)}: ${num(b.per_s, 2)}/s` })) }], xTime: true, yMin: 0, xLabel: "last 10 minutes", yLabel: "calls / s", width: 580 })),
        section("Rollouts per second", plot({ series: [{ name: "rollouts", bars: true, cls: "alt", points: d.rollouts.series.map((b) => ({ x: b.t_ms, y: b.per_s, title: `${when(b.t_ms)}: ${num(b.per_s, 2)}/s` })) }], xTime: true, yMin: 0, xLabel: "last 10 minutes", yLabel: "rollouts / s", width: 580 }))),
      section("Error rate by class",
        d.errors.length ? table([
          { label: "class", cell: (r) => h("a", { href: "/errors" }, r.error_class) },
          { label: "errors", cls: "n", cell: (r) => num(r.errors) },
          { label: "rollouts hit", cls: "n", cell: (r) => num(r.rollouts) },
          { label: "share of rollouts", cell: (r) => h("span", { cls: "meter" }, h("i", { style: `width:${Math.min(100, 100 * (r.rate || 0))}%` }), pct(r.rate)) },
        ], d.errors, { id: "error-rates" }) : h("p", { cls: "note" }, "No errors attributed yet.")));
  }

  function training(d) {
    const steps = d.steps || [];
    const series = (key, opts = {}) => [{ name: key, line: true, ...opts, points: steps.map((st) => ({ x: st.step, y: st[key], hollow: st.skipped, data: { step: st.step }, title: `step ${st.step}${st.skipped ? " (skipped: no signal)" : ""}: ${num(st[key])}` })) }];
    const chart = (title, key, opts = {}) => section(title, plot({ series: series(key, opts.series), integerX: true, xLabel: "step", yLabel: opts.y || key, height: 220, width: 580, ...opts.plot }));
    const reward = [{ name: "reward", line: true, band: true, points: steps.map((st) => ({ x: st.step, y: st.reward_mean, low: st.reward_mean - st.reward_std, high: st.reward_mean + st.reward_std, hollow: st.skipped, title: `step ${st.step}: ${num(st.reward_mean)} ± ${num(st.reward_std)} (std)` })) }];
    const stale = [{ name: "staleness", bars: true, cls: "alt", points: steps.filter((st) => st.staleness !== null).map((st) => ({ x: st.step, y: st.staleness, title: `step ${st.step}: ${st.staleness} versions behind` })) }];
    const live = d.trainer && d.trainer.up ? `the trainer now: step ${d.trainer.step}, version ${d.trainer.version}, ${d.trainer.skipped} skipped, ${d.trainer.dropped_stale} dropped as stale` : "the trainer is not answering; figures are from the analytics";
    return h("div", { cls: "training" },
      h("div", { cls: "cards" }, card("steps", num(steps.length)), card("skipped (no signal)", num(d.skipped), "hollow points"),
        card("latest loss", steps.length ? num(steps[steps.length - 1].loss) : "–"), card("batches", num((d.batches || []).length))),
      h("p", { cls: "note" }, live),
      h("div", { cls: "grid" },
        chart("Loss", "loss"), chart("KL", "kl"), chart("Clip fraction", "clip_fraction", { plot: { yMin: 0 } }),
        section("Reward mean and spread", plot({ series: reward, integerX: true, xLabel: "step", yLabel: "reward (± std)", height: 220, width: 580 })),
        chart("Trained tokens / s", "tokens_per_s", { plot: { yMin: 0 }, y: "tokens / s" }),
        section("Staleness: versions behind the trainer", plot({ series: stale, integerX: true, yMin: 0, xLabel: "step", yLabel: "versions", height: 220, width: 580 }))),
      section("Steps", h("p", { cls: "note" }, steps.length > 50 ? `the newest 50 of ${steps.length}` : ""), table([
        { label: "step", cls: "n", cell: (r) => r.step }, { label: "version", cls: "n", cell: (r) => r.version },
        { label: "loss", cls: "n", cell: (r) => num(r.loss) }, { label: "KL", cls: "n", cell: (r) => num(r.kl) },
        { label: "clip", cls: "n", cell: (r) => num(r.clip_fraction) }, { label: "reward", cls: "n", cell: (r) => `${num(r.reward_mean)} ± ${num(r.reward_std)}` },
        { label: "tokens/s", cls: "n", cell: (r) => num(r.tokens_per_s, 1) }, { label: "rollouts", cls: "n", cell: (r) => r.trajectories },
        { label: "skipped", cell: (r) => (r.skipped ? "no signal" : "") }, { label: "staleness", cls: "n", cell: (r) => num(r.staleness) },
        { label: "batch", cell: (r) => h("code", {}, r.batch_id) },
      ], steps.slice(-50).reverse(), { id: "steps" })),
      behaviour(d.behaviour || []));
  }

  // What the policy does under each weight version: a rollout counts under the newest version that served it, at
  // the decoding its first call asked for.
  function behaviour(rows) {
    const decoding = (t) => (t === null || t === undefined ? "agent's default" : t === 0 ? "greedy" : `t=${num(t, 2)}`);
    return section("What the policy does, by weight version",
      rows.length ? table([
        { label: "version", cls: "n", cell: (r) => r.model_version }, { label: "split", cell: (r) => (r.split === "eval" ? "held-out" : r.split) },
        { label: "decoding", cell: (r) => decoding(r.temperature) }, { label: "rollouts", cls: "n", cell: (r) => num(r.rollouts) },
        { label: "reward", cls: "n", cell: (r) => num(r.reward_mean) }, { label: "calls a tool", cls: "n", cell: (r) => pct(r.tool_call_rate) },
        { label: "ends on an answer line", cls: "n", cell: (r) => pct(r.answer_line_rate) }, { label: "out of tokens", cls: "n", cell: (r) => pct(r.truncated_rate) },
        { label: "calls / rollout", cls: "n", cell: (r) => num(r.calls_per_rollout, 2) }, { label: "tokens / call", cls: "n", cell: (r) => num(r.tokens_per_call, 1) },
        { label: "with an error", cls: "n", cell: (r) => pct(r.error_rate) },
      ], rows.map((r) => ({ ...r, __attrs: { dataset: { version: r.model_version, split: r.split } } })), { id: "behaviour" })
        : h("p", { cls: "note" }, "No rollout recorded yet."),
      h("p", { cls: "note" }, "An answer line is 'Answer: <number>' (the format_validity reward's rule); errors by class per version are on the Errors page."));
  }

  const FILTERS = [["q", "rollout id"], ["task", "task"], ["agent", "agent"], ["version", "version"], ["min_reward", "reward ≥"], ["max_reward", "reward ≤"]];
  const SELECTS = [["status", ["", "succeeded", "failed", "timed_out", "cancelled"]], ["split", ["", "train", "eval"]], ["errors", ["", "yes", "no"]]];

  function rollouts(d, el) {
    const params = new URLSearchParams(location.search);
    let results = el.querySelector(".results");
    if (!results) {
      const form = h("form", { cls: "filters", onsubmit: (e) => {
        e.preventDefault();
        const next = new URLSearchParams();
        for (const [k, v] of new FormData(form)) if (String(v).trim()) next.set(k, String(v).trim());
        for (const k of ["sort", "order"]) if (params.get(k)) next.set(k, params.get(k));
        history.pushState(null, "", `/rollouts${next.toString() ? `?${next}` : ""}`);
        LW.reload();
      } },
        SELECTS.map(([name, options]) => h("label", {}, name, h("select", { name }, options.map((o) => h("option", { value: o, selected: params.get(name) === o }, o || "any"))))),
        FILTERS.map(([name, label]) => h("label", {}, label, h("input", { name, value: params.get(name) || "", size: name.includes("reward") || name === "version" ? 5 : 12 }))),
        h("button", { type: "submit" }, "Filter"), h("a", { href: "/rollouts", cls: "clear" }, "clear"));
      results = h("div", { cls: "results" });
      el.replaceChildren(form, results);
      window.addEventListener("popstate", () => LW.reload());
    }
    if (!d) { results.replaceChildren(h("p", { cls: "note" }, "No rollouts to show.")); return null; }
    const sortLink = (key, label) => {
      const p = new URLSearchParams(location.search);
      const on = (p.get("sort") || "finished") === key;
      const order = on && (p.get("order") || "desc") === "desc" ? "asc" : "desc";
      p.set("sort", key); p.set("order", order); p.delete("offset");
      return h("a", { href: `/rollouts?${p}`, cls: on ? `sorted ${p.get("order") === "asc" ? "desc" : "asc"}` : "" }, label);
    };
    const col = (key, label, cell, cls) => ({ label, head: key ? sortLink(key, label) : label, cell, cls });
    const pageLink = (offset, label) => { const p = new URLSearchParams(location.search); p.set("offset", String(Math.max(0, offset))); return h("a", { href: `/rollouts?${p}`, cls: "page" }, label); };
    const rows = d.rows.map((r) => ({ ...r, __attrs: { dataset: { rollout: r.rollout_id } } }));
    results.replaceChildren(
      h("p", { cls: "note", id: "total" }, d.total ? `rollouts ${d.offset + 1}–${d.offset + d.rows.length} of ${num(d.total)}` : "No rollout matches."),
      table([
        col("id", "rollout", (r) => rolloutLink(r.rollout_id)), col("status", "status", (r) => h("span", { cls: `status ${r.status}` }, r.status)),
        col("reward", "reward", (r) => num(r.reward), "n"), col("task", "task", (r) => `${r.task_id}${r.task_type ? ` (${r.task_type})` : ""}`),
        col("split", "split", (r) => r.split), col("version", "version", (r) => (r.min_version && r.min_version !== r.version ? `${r.min_version}–${r.version}` : r.version), "n"),
        col("calls", "calls", (r) => r.calls, "n"), col("errors", "errors", (r) => r.errors || "", "n"),
        col("duration", "duration", (r) => duration(r.duration_ms), "n"), col("agent", "agent", (r) => r.agent || "–"),
        col("finished", "finished", (r) => when(r.finished_ms)),
      ], rows, { id: "rollouts" }),
      h("div", { cls: "pager" }, d.offset > 0 ? pageLink(d.offset - d.limit, "← newer") : null, d.offset + d.rows.length < d.total ? pageLink(d.offset + d.limit, "older →") : null));
    return null;
  }

  const shade = (p) => (p === null ? "transparent" : `hsla(${Math.round(120 * p)}, 80%, 55%, ${(0.2 + 0.55 * (1 - p)).toFixed(2)})`);
  const visible = (text) => text.replace(/\n/g, "⏎\n").replace(/\t/g, "⇥");

  function tokens(list) {
    return h("div", { cls: "tokens" }, list.map((t) => h("span", { cls: "tok", tabindex: 0, style: `background:${shade(t.p)}`,
      dataset: { id: t.id, text: t.text === null ? undefined : t.text, logprob: t.logprob === null ? "" : t.logprob, p: t.p === null ? "" : t.p } },
    t.text === null ? `#${t.id} ` : visible(t.text))));
  }

  function message(m) {
    return h("div", { cls: `msg ${m.role}` }, h("span", { cls: "role" }, m.role), h("pre", {}, m.content || ""),
      m.tool_calls ? h("pre", { cls: "toolcalls" }, m.tool_calls) : null);
  }

  function callCard(c) {
    const earlier = c.messages.slice(0, c.earlier), fresh = c.messages.slice(c.earlier);
    return h("div", { cls: "call", dataset: { step: c.step, version: c.model_version, prompt: c.prompt_version || 0 } },
      h("div", { cls: "head" }, h("b", {}, `call ${c.step}`), h("span", { cls: "badge version" }, `v${c.model_version}`),
        c.prompt_version ? h("span", { cls: "badge prompt", title: "prompt policy version the gateway served this call under" }, `prompt v${c.prompt_version}`) : null,
        `${c.model} · ${c.endpoint || ""} · ${duration(c.latency_ms)} · ${c.prompt_tokens} prompt + ${c.completion_tokens} completion tokens`,
        c.agent_name ? h("span", { cls: "badge" }, c.agent_name) : null, c.error_class ? h("span", { cls: "badge error" }, `${c.error_class} (${c.http_status})`) : null),
      earlier.length ? h("details", { dataset: { key: `earlier-${c.step}` } }, h("summary", {}, `${earlier.length} earlier messages`), earlier.map(message)) : null,
      fresh.map(message),
      c.completions.map((comp) => h("div", { cls: "completion", dataset: { index: comp.index } },
        h("span", { cls: "role" }, c.completions.length > 1 ? `completion ${comp.index}` : "completion"),
        comp.tokens.length ? tokens(comp.tokens) : h("pre", {}, comp.reply ? comp.reply.content : ""),
        comp.reply && comp.reply.tool_calls ? h("pre", { cls: "toolcalls" }, comp.reply.tool_calls) : null)));
  }

  function entry(e, callsByStep) {
    const at = (label, ...body) => h("li", { cls: `entry kind-${e.kind}`, dataset: { kind: e.kind, step: e.step === null ? "" : e.step } }, h("span", { cls: "when" }, label), h("div", { cls: "what" }, ...body));
    switch (e.kind) {
      case "start": return at("start", `started ${when(e.at_ms)}`, e.worker ? ` by ${e.worker}` : "");
      case "call": return at(`step ${e.step}`, callCard(callsByStep[e.step]));
      case "span": return at(`after ${e.step}`, h("b", {}, `${e.span_kind} ${e.name}`), ` (${duration(e.ended_ms - e.started_ms)})`,
        e.attributes_json ? h("pre", {}, e.attributes_json) : null, e.error_type ? h("div", { cls: "error" }, `${e.error_type}: ${e.error_message}`) : null);
      case "error": return at(`step ${e.step}`, h("span", { cls: "badge error" }, e.error_class), " ", e.message, e.attributor ? h("span", { cls: "note" }, ` (${e.attributor})`) : null,
        e.stack ? h("details", {}, h("summary", {}, "stack"), h("pre", {}, e.stack)) : null);
      case "reward": return at("reward", h("b", {}, e.name), ` = ${num(e.value)} (${e.source})`);
      case "late_reward": return at("late", h("b", {}, e.name), ` = ${num(e.value)} (${e.source}, after the trajectory was released: recorded, not trained on) ${when(e.created_ms)}`);
      case "finish": return at("finish", h("span", { cls: `status ${e.status}` }, e.status), ` reward ${num(e.reward)} · ${when(e.at_ms)}`);
      default: return at(e.kind, JSON.stringify(e));
    }
  }

  function maskStrip(runs, total) {
    const width = 320;
    let x = 0;
    return LW.s("svg", { viewBox: `0 0 ${width} 12`, cls: "mask" }, runs.map(([m, n]) => {
      const w = (n / Math.max(1, total)) * width;
      const r = LW.s("rect", { x, y: 0, width: Math.max(0.5, w), height: 12, cls: m ? "sampled" : "observed" }, LW.s("title", { text: `${n} ${m ? "sampled (trained)" : "observation (masked)"} tokens` }));
      x += w;
      return r;
    }));
  }

  function rollout(d, el) {
    const open = new Set([...el.querySelectorAll("details[open]")].map((x) => x.dataset.key).filter(Boolean));
    const r = d.rollout || {}, st = d.start || {};
    const callsByStep = Object.fromEntries(d.calls.map((c) => [c.step, c]));
    const batch = d.batch[0];
    const input = st.input_json ? h("pre", {}, st.input_json) : "–";
    const out = h("div", { cls: "rollout" },
      h("dl", { cls: "facts" },
        [["status", h("span", { cls: `status ${r.status || "pending"}` }, r.status || "not released yet")], ["reward", num(r.reward)],
          ["task", `${r.task_id || st.task_id || "–"} (${r.task_type || st.task_type || ""})`], ["split", r.split || st.split || "–"],
          ["versions", r.min_model_version === r.max_model_version ? `v${r.max_model_version}` : `v${r.min_model_version}–v${r.max_model_version}`],
          ["calls", d.calls.length], ["errors", r.num_errors || 0], ["agent", st.worker_id || "–"],
          ["duration", duration(r.finished_ms && st.started_ms ? r.finished_ms - st.started_ms : null)],
          ["group", r.group_id ? h("a", { href: `/rollouts?group=${encodeURIComponent(r.group_id)}` }, r.group_id) : "–"],
          ["batch", batch ? `${batch.batch_id}${batch.step ? ` (trained at step ${batch.step})` : " (not trained yet)"}` : r.split === "eval" ? "held-out: never trained" : "–"],
          ["input", input]].map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
      section("Timeline", h("p", { cls: "note" }, "Completion tokens are shaded by their logprob (green: likely, red: unlikely); hover one for its id, text and logprob."),
        h("ol", { cls: "timeline", id: "timeline" }, d.timeline.map((e) => entry(e, callsByStep)))),
      section("Transitions the trainer got", d.transitions.length ? table([
        { label: "#", cls: "n", cell: (t) => t.index + 1 }, { label: "first call", cell: (t) => h("code", {}, t.call_id) },
        { label: "merged calls", cls: "n", cell: (t) => t.merged_calls }, { label: "prompt tokens", cls: "n", cell: (t) => t.prompt_tokens },
        { label: "response: sampled + observed", cls: "n", cell: (t) => `${t.sampled} + ${t.observed}` },
        { label: "mask", cell: (t) => maskStrip(t.runs, t.response_tokens) }, { label: "reward", cls: "n", cell: (t) => num(t.reward) },
        { label: "version", cls: "n", cell: (t) => t.version },
      ], d.transitions, { id: "transitions" }) : h("p", { cls: "note" }, "No transitions (not released yet, or no call produced tokens).")),
      section("Group", d.group.length ? table([
        { label: "rollout", cell: (g) => (g.rollout_id === r.rollout_id ? h("b", {}, g.rollout_id) : rolloutLink(g.rollout_id)) },
        { label: "status", cell: (g) => g.status }, { label: "reward", cls: "n", cell: (g) => num(g.reward) }, { label: "version", cls: "n", cell: (g) => g.max_model_version },
      ], d.group, { id: "group" }) : h("p", { cls: "note" }, "Not in a group.")));
    for (const det of out.querySelectorAll("details")) if (open.has(det.dataset.key)) det.open = true;
    return out;
  }

  function errors(d) {
    const m = d.matrix;
    const classes = [...new Set(d.by_version.flatMap((v) => Object.keys(v.classes)))];
    const rateSeries = classes.map((c, k) => ({ name: c, cls: `c${k % 6}`, line: true, points: d.by_version.filter((v) => v.rollouts).map((v) => ({ x: v.version, y: v.classes[c] ? v.classes[c].rate : 0, title: `${c}, version ${v.version}: ${pct(v.classes[c] ? v.classes[c].rate : 0)}` })) }));
    return h("div", { cls: "errors" },
      section("Errors by class and step", m.classes.length ? h("table", { id: "error-matrix", cls: "matrix" },
        h("thead", {}, h("tr", {}, h("th", {}, "class \\ step"), m.steps.map((st) => h("th", { cls: "n" }, st)), h("th", { cls: "n" }, "total"))),
        h("tbody", {}, m.classes.map((c, i) => h("tr", {}, h("th", {}, c), m.counts[i].map((n, j) => h("td", { cls: "n", dataset: { class: c, step: m.steps[j] },
          style: n ? `background:rgba(214,69,65,${(0.15 + 0.75 * n / m.max).toFixed(2)})` : "" }, n || "")), h("td", { cls: "n" }, m.totals[i]))))) : h("p", { cls: "note" }, "No errors attributed yet."),
        h("p", { cls: "note" }, "Step k is the k-th LLM call of a rollout; step 0 is before its first call.")),
      section("Share of rollouts with each class, by weight version", legend(rateSeries.map((se) => [se.cls, se.name])),
        plot({ series: rateSeries, integerX: true, yMin: 0, xLabel: "weight version", yLabel: "share of rollouts", width: 1180, height: 240 }),
        table([{ label: "version", cls: "n", cell: (v) => v.version }, { label: "rollouts", cls: "n", cell: (v) => num(v.rollouts) },
          ...classes.map((c) => ({ label: c, cls: "n", cell: (v) => (v.classes[c] ? `${v.classes[c].errors} (${pct(v.classes[c].rate)})` : "") }))], d.by_version, { id: "errors-by-version" })),
      section("Latest errors", table([{ label: "rollout", cell: (e) => rolloutLink(e.rollout_id) }, { label: "step", cls: "n", cell: (e) => e.step },
        { label: "class", cell: (e) => e.error_class }, { label: "version", cls: "n", cell: (e) => e.model_version }, { label: "message", cell: (e) => e.message },
        { label: "when", cell: (e) => when(e.created_ms) }], d.recent, { id: "recent-errors" })));
  }

  function feedback(d) {
    return h("div", { cls: "feedback" },
      section("By name", d.by_name.length ? table([{ label: "name", cell: (f) => f.name }, { label: "source", cell: (f) => f.source },
        { label: "late", cell: (f) => (f.late ? "late: a correction" : "on time: in the reward") }, { label: "count", cls: "n", cell: (f) => num(f.rewards) },
        { label: "mean", cls: "n", cell: (f) => num(f.value_mean) }, { label: "rollouts", cls: "n", cell: (f) => num(f.rollouts) }], d.by_name, { id: "feedback-by-name" })
        : h("p", { cls: "note" }, "No feedback yet. Send some: a JSON record on lw.feedback, {\"rollout_id\": ..., \"name\": \"thumbs\", \"value\": 1}.")),
      section("Latest feedback and late rewards, with the rollouts they changed", table([
        { label: "rollout", cell: (f) => rolloutLink(f.rollout_id) }, { label: "name", cell: (f) => f.name }, { label: "value", cls: "n", cell: (f) => num(f.value) },
        { label: "source", cell: (f) => f.source }, { label: "late", cell: (f) => (f.late ? "yes" : "") },
        { label: "trained reward", cls: "n", cell: (f) => num(f.rollout_reward) }, { label: "status", cell: (f) => f.rollout_status || "–" },
        { label: "when", cell: (f) => when(f.created_ms) }], d.recent, { id: "feedback" })));
  }

  const empty = (view) => (view === "rollouts" ? null : h("p", { cls: "note" }, "Waiting for figures…"));
  const views = { overview, training, rollouts, rollout, errors, feedback, empty };
  LW.start(views);
  if (LW.boot.view === "rollouts" && !LW.boot.data) rollouts(null, document.getElementById("view"));
})();
