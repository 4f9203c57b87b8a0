/* The DevOps view's only script (served by the plugin, no library):
 * 1. the overview's live lists: new failures and alerts from the read API's Server-Sent Events stream
 *    (EventSource reconnects by itself and resumes from the last event id);
 * 2. links out of Airflow's frame: Airflow shows these pages in a sandboxed iframe that may neither open
 *    new tabs nor navigate the Airflow page, so a link marked data-out is followed by the Airflow page
 *    itself (same origin): "airflow" links there, others in a new tab.
 * Every value from the server is put in as text, never as markup. */
(function () {
  "use strict";

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function fmtTime(iso) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return String(iso);
    return d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  }

  function short(text, limit) {
    text = String(text || "").replace(/\s+/g, " ").trim();
    return text.length <= limit ? text : text.slice(0, limit - 1) + "\u2026";
  }

  function failureItem(d, detail) {
    var li = el("li", "item new");
    li.setAttribute("data-failure-id", d.id);
    li.setAttribute("data-live-id", d.id);
    var line = el("div", "line");
    var link = el("a", null, (d.project_path || d.project_id || "?") + " \u00b7 " + (d.job_name || d.job_id || "?"));
    link.href = detail + encodeURIComponent(d.id);
    line.appendChild(link);
    line.appendChild(document.createTextNode(" "));
    line.appendChild(el("span", "cat cat-" + String(d.category || "unknown").replace(/[^a-z0-9_]/g, ""), d.category || "unknown"));
    if (d.is_transient) {
      line.appendChild(document.createTextNode(" "));
      line.appendChild(el("span", "tag", "transient"));
    }
    line.appendChild(el("time", "muted", fmtTime(d.created_at)));
    li.appendChild(line);
    if (d.root_cause) li.appendChild(el("div", "cause", short(d.root_cause, 180)));
    return li;
  }

  function alertItem(d) {
    var li = el("li", "item new");
    li.setAttribute("data-alert-id", d.id);
    var line = el("div", "line");
    line.appendChild(el("span", "sev sev-" + String(d.severity || "").replace(/[^a-z]/g, ""), d.severity));
    line.appendChild(document.createTextNode(" "));
    line.appendChild(el("strong", null, d.rule_id));
    line.appendChild(document.createTextNode(" "));
    line.appendChild(el("span", "muted", d.scope_key));
    li.appendChild(line);
    li.appendChild(el("div", "cause", "since " + fmtTime(d.started_at) + " \u00b7 " + (d.source || "")));
    return li;
  }

  function live() {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) return;
    var failures = document.querySelector('[data-live="failures"]');
    var alerts = document.querySelector('[data-live="alerts"]');
    var status = document.querySelector("[data-live-status]");
    var count = document.querySelector("[data-live-count]");
    var today = new Date().toISOString().slice(0, 10);
    var seen = {};

    function setStatus(text, cls) {
      if (!status) return;
      status.textContent = text;
      status.className = "live " + cls;
    }

    var source = new EventSource(url);
    source.addEventListener("ready", function () { setStatus("live", "on"); });
    source.addEventListener("open", function () { setStatus("live", "on"); });
    source.addEventListener("error", function () { setStatus("reconnecting\u2026", "off"); });
    source.addEventListener("failure", function (ev) {
      var d = JSON.parse(ev.data);
      if (!failures || seen["f" + d.id]) return;
      seen["f" + d.id] = true;
      failures.insertBefore(failureItem(d, failures.getAttribute("data-detail")), failures.firstChild);
      var empty = document.querySelector("[data-live-empty]");
      if (empty) empty.hidden = true;
      if (count && String(d.created_at || "").slice(0, 10) === today) {
        count.textContent = String(parseInt(count.textContent, 10) + 1 || 1);
      }
    });
    source.addEventListener("alert", function (ev) {
      var d = JSON.parse(ev.data);
      if (!alerts || seen["a" + d.id] || d.state !== "firing") return;
      seen["a" + d.id] = true;
      alerts.insertBefore(alertItem(d), alerts.firstChild);
      var empty = document.querySelector("[data-live-empty-alerts]");
      if (empty) empty.hidden = true;
    });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  function framedLinks() {
    if (window.top === window) return;
    document.addEventListener("click", function (ev) {
      var link = ev.target.closest ? ev.target.closest("a[data-out]") : null;
      if (!link || ev.defaultPrevented || ev.button !== 0 || ev.ctrlKey || ev.metaKey || ev.shiftKey) return;
      try {
        var doc = window.top.document;  // throws when Airflow is on another origin: the link then works as is
        var out = doc.createElement("a");
        out.href = link.href;
        if (link.getAttribute("data-out") === "airflow") {
          out.target = "_self";
        } else {
          out.target = "_blank";
          out.rel = "noopener noreferrer";
        }
        doc.body.appendChild(out);
        out.click();
        out.remove();
        ev.preventDefault();
      } catch (e) { /* not reachable: leave the click alone */ }
    });
  }

  live();
  framedLinks();
})();
