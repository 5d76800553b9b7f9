// Nuncio dashboard: polls /dashboard/data once a second and redraws. No dependencies: the page
// must work from the admin listener alone, with no network beyond it.
"use strict";

(function () {
  const REFRESH_MS = 1000;
  // Charts span the data they have, from one minute up to the five the server keeps.
  const MIN_WINDOW_MS = 60 * 1000;
  const MAX_WINDOW_MS = 5 * 60 * 1000;
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function fmtInt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function fmtRate(v) {
    if (v === 0) return "0";
    if (v >= 1000) return (v / 1000).toFixed(1) + "k";
    if (v >= 100) return v.toFixed(0);
    if (v >= 10) return v.toFixed(1);
    return v.toFixed(2);
  }

  function fmtMs(v) {
    if (v === null || v === undefined) return "–";
    if (v >= 1000) return (v / 1000).toFixed(2) + " s";
    if (v >= 10) return v.toFixed(0) + " ms";
    return v.toFixed(2) + " ms";
  }

  function fmtPct(v) {
    const p = v * 100;
    if (p === 0) return "0%";
    if (p < 0.1) return "<0.1%";
    return p.toFixed(p < 10 ? 1 : 0) + "%";
  }

  function fmtDuration(s) {
    const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
    if (d > 0) return d + "d " + h + "h";
    if (h > 0) return h + "h " + m + "m";
    if (m > 0) return m + "m " + (s % 60) + "s";
    return s + "s";
  }

  function fmtTime(iso) {
    const d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  }

  // niceStep rounds a gridline step up to 1, 2 or 5 times a power of ten.
  function niceStep(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) {
      if (v <= m * p + 1e-12) return m * p;
    }
    return 10 * p;
  }

  // decimals is how many are needed to tell gridlines step apart.
  function decimals(step) {
    return Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  }

  function fmtAge(ms) {
    const s = Math.round(ms / 1000);
    if (s === 0) return "now";
    return s % 60 === 0 ? "-" + s / 60 + "m" : "-" + s + "s";
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // drawChart draws lines (each {key, color, fill}) over the recent points. fmtY formats a
  // gridline value given the number of decimals the step needs; minTop is the least top the
  // y axis may have, so that a flat line near zero does not fill the chart.
  function drawChart(svg, points, lines, now, fmtY, minTop) {
    const w = svg.clientWidth || 400, h = svg.clientHeight || 170;
    const left = 46, right = 10, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    while (svg.firstChild) svg.removeChild(svg.firstChild);

    const oldest = points.length ? points[0].t : now;
    const span = Math.min(MAX_WINDOW_MS, Math.max(MIN_WINDOW_MS, now - oldest));
    const t0 = now - span;
    const visible = points.filter((p) => p.t >= t0);
    let max = minTop || 0;
    for (const p of visible) for (const l of lines) if (p[l.key] !== null && p[l.key] > max) max = p[l.key];
    const step = niceStep(max / 4 || 0.25);
    const ticks = Math.max(1, Math.ceil(max / step - 1e-9));
    const topV = step * ticks;

    const x = (t) => left + ((t - t0) / span) * pw;
    const y = (v) => top + ph - (v / topV) * ph;

    const dec = decimals(step);
    for (let i = 0; i <= ticks; i++) {
      const v = step * i, yy = y(v);
      el("line", { x1: left, x2: w - right, y1: yy, y2: yy, class: "grid" }, svg);
      const t = el("text", { x: left - 6, y: yy + 3, "text-anchor": "end", class: "axis" }, svg);
      t.textContent = fmtY(v, dec);
    }
    const xstep = span > 2 * MIN_WINDOW_MS ? 60000 : 15000;
    for (let age = 0; age <= span; age += xstep) {
      const xx = x(now - age);
      const t = el("text", { x: xx, y: h - 4, "text-anchor": age === 0 ? "end" : age + xstep > span ? "start" : "middle", class: "axis" }, svg);
      t.textContent = fmtAge(age);
    }
    if (visible.length < 2) {
      const t = el("text", { x: left + pw / 2, y: top + ph / 2, "text-anchor": "middle", class: "nodata" }, svg);
      t.textContent = "collecting samples…";
      if (visible.length === 0) return;
    }
    for (const l of lines) {
      // Split at nulls so a gap in the data is a gap in the line.
      let runs = [], run = [];
      for (const p of visible) {
        if (p[l.key] === null || p[l.key] === undefined) {
          if (run.length) runs.push(run);
          run = [];
        } else {
          run.push([x(p.t), y(p[l.key])]);
        }
      }
      if (run.length) runs.push(run);
      for (const r of runs) {
        const d = r.map((q, i) => (i ? "L" : "M") + q[0].toFixed(1) + " " + q[1].toFixed(1)).join("");
        if (l.fill && r.length > 1) {
          el("path", { d: d + "L" + r[r.length - 1][0].toFixed(1) + " " + y(0) + "L" + r[0][0].toFixed(1) + " " + y(0) + "Z", class: "area", fill: l.color }, svg);
        }
        el("path", { d: r.length > 1 ? d : d + "h0.01", class: "line", stroke: l.color }, svg);
      }
    }
  }

  function renderHeader(d) {
    $("version").textContent = /^\d/.test(d.server.version) ? "v" + d.server.version : d.server.version;
    const st = $("state");
    st.textContent = d.server.state;
    st.className = "pill " + (d.server.state === "LIVE" ? "live" : d.server.state === "DRAINING" ? "draining" : "down");
    $("uptime").textContent = fmtDuration(d.server.uptime_seconds);
    $("config-version").textContent = d.config.version || "–";
    $("config-version").title = d.config.applied_at ? "applied " + fmtTime(d.config.applied_at) : "";
    const rj = $("rejection");
    if (d.config.last_rejection) {
      rj.hidden = false;
      rj.innerHTML = '<span class="title">Last configuration update rejected</span>' +
        '<span class="when">' + esc(fmtTime(d.config.last_rejection.at)) + " · the previous configuration stays in force</span>" +
        '<pre id="rejection-reason">' + esc(d.config.last_rejection.reason) + "</pre>";
    } else {
      rj.hidden = true;
      rj.textContent = "";
    }
  }

  function renderKPIs(d) {
    const last = d.series.length ? d.series[d.series.length - 1] : null;
    $("kpi-rps").textContent = last ? fmtRate(last.rps) : "–";
    const err = $("kpi-errors");
    err.textContent = last ? fmtPct(last.error_rate) : "–";
    err.className = "value" + (last && last.error_rate > 0.01 ? " bad" : "");
    let p99 = null;
    for (let i = d.series.length - 1; i >= 0 && i >= d.series.length - 10; i--) {
      if (d.series[i].p99 !== null) { p99 = d.series[i].p99; break; }
    }
    $("kpi-p99").textContent = fmtMs(p99);
    $("total-requests").textContent = fmtInt(d.totals.downstream_rq_total);
    $("total-requests").dataset.value = d.totals.downstream_rq_total;
    $("kpi-conns").textContent = fmtInt(d.totals.active_connections);
  }

  function renderCharts(d) {
    const fixed = (v, dec) => v.toFixed(dec);
    drawChart($("chart-rps"), d.series, [{ key: "rps", color: "#2f6fec", fill: true }], d.now, fixed, 1);
    drawChart($("chart-errors"), d.series, [{ key: "error_rate", color: "#d64545", fill: true }], d.now,
      (v, dec) => (v * 100).toFixed(Math.max(0, dec - 2)) + "%", 0.01);
    drawChart($("chart-latency"), d.series, [
      { key: "p50", color: "#2f6fec" }, { key: "p90", color: "#8a5cf6" }, { key: "p99", color: "#e0662c" },
    ], d.now, fixed, 1);
  }

  function renderClusters(d) {
    const box = $("clusters");
    if (!d.clusters.length) {
      box.innerHTML = '<p class="empty">No clusters.</p>';
      return;
    }
    box.innerHTML = d.clusters.map((c) => {
      const rows = c.hosts.length ? c.hosts.map((h) =>
        '<tr class="host" data-host="' + esc(h.address) + '" data-health="' + esc(h.health) + '">' +
        '<td class="mono">' + esc(h.address) + "</td>" +
        '<td><span class="health ' + (h.healthy ? "ok" : "bad") + '">' + esc(h.healthy ? "healthy" : h.health.replace(/^\//, "").replace(/\//g, ", ")) + "</span></td>" +
        '<td class="num">' + h.weight + "</td>" +
        '<td class="num">' + fmtInt(h.active_requests) + "</td>" +
        '<td class="num">' + fmtInt(h.active_connections) + "</td></tr>").join("")
        : '<tr><td colspan="5" class="empty">No endpoints.</td></tr>';
      return '<article class="card cluster" data-cluster="' + esc(c.name) + '">' +
        '<header><span class="cname">' + esc(c.name) + "</span>" +
        (c.added_via_api ? '<span class="tag">xDS</span>' : '<span class="tag">static</span>') +
        '<span class="count"><b class="healthy-count">' + c.healthy + "/" + c.hosts.length + "</b> healthy · " +
        '<b class="upstream-rq" data-value="' + c.upstream_rq_total + '">' + fmtInt(c.upstream_rq_total) + "</b> requests</span></header>" +
        '<div class="bar"><span></span></div>' +
        "<table><thead><tr><th>Endpoint</th><th>Health</th><th class=\"num\">Weight</th><th class=\"num\">In flight</th><th class=\"num\">Conns</th></tr></thead>" +
        "<tbody>" + rows + "</tbody></table></article>";
    }).join("");
    // Widths are set through the CSSOM: the page's policy forbids inline style attributes.
    box.querySelectorAll(".cluster").forEach((art, i) => {
      const c = d.clusters[i];
      const bar = art.querySelector(".bar");
      bar.querySelector("span").style.width = (c.hosts.length ? (100 * c.healthy) / c.hosts.length : 0) + "%";
      if (!c.hosts.length) bar.hidden = true;
    });
  }

  function renderListeners(d) {
    const body = $("listeners").tBodies[0];
    if (!d.listeners.length) {
      body.innerHTML = '<tr><td colspan="5" class="empty">No listeners.</td></tr>';
      return;
    }
    body.innerHTML = d.listeners.map((l) =>
      '<tr data-listener="' + esc(l.name) + '"><td class="mono">' + esc(l.name) + '</td><td class="mono">' + esc(l.address) + "</td>" +
      '<td class="mono">' + esc(l.stat_prefixes.join(", ") || "–") + '</td><td class="num">' + fmtInt(l.downstream_rq_total) +
      '</td><td class="num">' + fmtInt(l.active_connections) + "</td></tr>").join("");
  }

  function renderRoutes(d) {
    const box = $("routes");
    if (!d.routes.length) {
      box.innerHTML = '<p class="empty">No route tables.</p>';
      return;
    }
    box.innerHTML = d.routes.map((rc) =>
      '<div class="card rc" data-route-config="' + esc(rc.name) + '"><div class="rchead"><span class="rcname">' + esc(rc.name || "(inline)") + "</span>" +
      '<span class="via">listener ' + esc(rc.listener) + (rc.stat_prefix ? " · http." + esc(rc.stat_prefix) : "") + "</span></div>" +
      (rc.virtual_hosts.length ? rc.virtual_hosts.map((vh) =>
        '<div class="vhost"><span class="vhname">' + esc(vh.name) + "</span>" + vh.domains.map((dm) => '<span class="domain">' + esc(dm) + "</span>").join("") +
        "<table><tbody>" + (vh.routes.length ? vh.routes.map((r) =>
          '<tr><td class="mono">' + esc(r.match) + '</td><td class="action mono">' + esc(r.action) + "</td></tr>").join("")
          : '<tr><td class="empty">No routes.</td></tr>') + "</tbody></table></div>").join("")
        : '<p class="empty">No virtual hosts (waiting for RDS?).</p>') +
      "</div>").join("");
  }

  let lastOK = 0, failing = false;

  function render(d) {
    renderHeader(d);
    renderKPIs(d);
    renderCharts(d);
    renderClusters(d);
    renderListeners(d);
    renderRoutes(d);
    document.body.dataset.loaded = "true";
  }

  async function tick() {
    try {
      const resp = await fetch("/dashboard/data", { cache: "no-store" });
      if (!resp.ok) throw new Error("HTTP " + resp.status);
      render(await resp.json());
      lastOK = Date.now();
      failing = false;
    } catch (e) {
      failing = true;
    }
    const f = $("freshness");
    if (failing) {
      f.textContent = lastOK ? "disconnected · last update " + Math.round((Date.now() - lastOK) / 1000) + "s ago" : "cannot reach the admin API";
      f.className = "meta stale";
    } else {
      f.textContent = "live · every 1s";
      f.className = "meta";
    }
    setTimeout(tick, REFRESH_MS);
  }

  tick();
})();
