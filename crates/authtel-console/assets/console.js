// authtel console: the live stream. Served as a file (the CSP allows no inline script).
// Every value from the server is set with textContent, never parsed as HTML.
"use strict";

(function () {
  var table = document.getElementById("stream");
  if (!table) {
    return;
  }
  var rows = document.getElementById("stream-rows");
  var status = document.getElementById("stream-status");
  var MAX_ROWS = 500;

  function cell(tr, text) {
    var td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    tr.appendChild(td);
    return td;
  }

  function show(record) {
    var tr = document.createElement("tr");
    tr.className = "outcome-" + record.outcome;
    tr.setAttribute("data-seq", String(record.seq));
    var first = document.createElement("td");
    var link = document.createElement("a");
    // The server builds href from the record's UUID and time; accept only a same-origin
    // path ("/x", not the protocol-relative "//host").
    var href = record.href;
    if (typeof href === "string" && href.charAt(0) === "/" && href.charAt(1) !== "/") {
      link.setAttribute("href", href);
    }
    link.textContent = record.at;
    first.appendChild(link);
    tr.appendChild(first);
    cell(tr, record.action);
    cell(tr, record.outcome);
    cell(tr, record.actor);
    cell(tr, record.ip);
    cell(tr, record.user_agent);
    cell(tr, record.resource);
    cell(tr, record.reason);
    rows.insertBefore(tr, rows.firstChild);
    while (rows.children.length > MAX_ROWS) {
      rows.removeChild(rows.lastChild);
    }
  }

  var source = new EventSource(table.getAttribute("data-src"));
  source.addEventListener("open", function () {
    status.textContent = "live";
  });
  source.addEventListener("ready", function () {
    status.textContent = "live";
  });
  source.addEventListener("audit", function (e) {
    try {
      show(JSON.parse(e.data));
    } catch (err) {
      status.textContent = "a record could not be shown: " + err;
    }
  });
  source.addEventListener("store-error", function (e) {
    status.textContent = e.data;
  });
  source.addEventListener("error", function () {
    status.textContent = "reconnecting… (the browser resumes where it left off)";
  });
})();
