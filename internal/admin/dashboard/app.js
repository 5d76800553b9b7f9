// Nuncio dashboard: polls /dashboard/data once a second and redraws. No dependencies: the page
// must work from the admin listener alone, with no network beyond it.
"use strict";

(function () {
  const REFRESH_MS = 1000;
  const WINDOW_MS = 5 * 60 * 1000;
  const SVG = "http://www.w3.org/2000/svg";

  const $ = (id) => document.getElementById(id);

  function esc(s) {
    return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
  }

  function fmtInt(n) {
    return Number(n).toLocaleString("en-US");
  }

  function fmtRate(v) {
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

  // niceMax rounds a chart's top up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) {
      if (v <= m * p) return m * p;
    }
    return 10 * p;
  }

  function el(name, attrs, parent) {
    const e = document.createElementNS(SVG, name);
    for (const k in attrs) e.setAttribute(k, attrs[k]);
    if (parent) parent.appendChild(e);
    return e;
  }

  // drawChart draws lines (each {key, color, fill}) over points in the last WINDOW_MS.
  function drawChart(svg, points, lines, now, fmtY, fixedMax) {
    const w = svg.clientWidth || 400, h = svg.clientHeight || 170;
    const left = 44, right = 8, top = 8, bottom = 20;
    const pw = w - left - right, ph = h - top - bottom;
    svg.setAttribute("viewBox", "0 0 " + w + " " + h);
    while (svg.firstChild) svg.removeChild(svg.firstChild);

    const t0 = now - WINDOW_MS;
    const visible = points.filter((p) => p.t >= t0);
    let max = 0;
    for (const p of visible) for (const l of lines) if (p[l.key] !== null && p[l.key] > max) max = p[l.key];
    max = fixedMax !== undefined ? Math.max(fixedMax, niceMax(max)) : niceMax(max);
    if (fixedMax !== undefined && fixedMax === 1 && max > 1) max = 1;

    const x = (t) => left + ((t - t0) / WINDOW_MS) * pw;
    const y = (v) => top + ph - (v / max) * ph;

    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, yy = y(v);
      el("line", { x1: left, x2: w - right, y1: yy, y2: yy, class: "grid" }, svg);
      const t = el("text", { x: left - 6, y: yy + 3, "text-anchor": "end", class: "axis" }, svg);
      t.textContent = fmtY(v);
    }
    for (let m = 5; m >= 0; m--) {
      const xx = x(now - m * 60000);
      const t = el("text", { x: xx, y: h - 4, "text-anchor": m === 0 ? "end" : m === 5 ? "start" : "middle", class: "axis" }, svg);
      t.textContent = m === 0 ? "now" : "-" + m + "m";
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
    $("version").textContent = d.server.version ? "v" + d.server.version.replace(/^v/, "") : "";
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
    drawChart($("chart-rps"), d.series, [{ key: "rps", color: "#2f6fec", fill: true }], d.now, fmtRate);
    drawChart($("chart-errors"), d.series, [{ key: "error_rate", color: "#d64545", fill: true }], d.now,
      (v) => (v * 100).toFixed(v < 0.1 ? 1 : 0) + "%", 0.01);
    drawChart($("chart-latency"), d.series, [
      { key: "p50", color: "#2f6fec" }, { key: "p90", color: "#8a5cf6" }, { key: "p99", color: "#e0662c" },
    ], d.now, (v) => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(0) : v.toFixed(1)));
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
        "<table><thead><tr><th>Endpoint</th><th>Health</th><th class=\"num\">Weight</th><th class=\"num\">Active rq</th><th class=\"num\">Conns</th></tr></thead>" +
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
