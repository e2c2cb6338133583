// The console page: signs in with a bearer token (kept for this tab only) and works the
// queue through the JSON API (/openapi.yaml). Everything shown is set as text, never as HTML.
"use strict";

let token = sessionStorage.getItem("fraud-console-token") || "";
let me = null;
let current = null;
let exponents = {};  // decimals of each currency's minor units, from the service's ISO 4217 table

const $ = (id) => document.getElementById(id);

// A key for one change: a retry sends the same one, so the database answers it with the
// first answer instead of making the change twice (crypto.randomUUID needs a secure context;
// getRandomValues does not).
function idempotencyKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

// The key of each change not yet answered for sure (no reply, or a 5xx): sent again, by the
// loop below or by the analyst clicking again, it carries the same key and is made once.
const unanswered = new Map();

async function call(method, path, body) {
  const headers = { Authorization: "Bearer " + token };
  if (body) headers["Content-Type"] = "application/json";
  const change = method + " " + path + " " + JSON.stringify(body ?? null);
  if (method === "POST") {
    if (!unanswered.has(change)) unanswered.set(change, idempotencyKey());
    headers["Idempotency-Key"] = unanswered.get(change);
  }
  const request = { method, headers, body: body ? JSON.stringify(body) : undefined };
  // A lost reply or a busy database: the same request again, twice at most.
  let response;
  for (let attempt = 0; ; attempt++) {
    try {
      response = await fetch(path, request);
      if (response.status !== 503 || attempt === 2) break;
    } catch (error) {
      if (attempt === 2) throw error;
    }
    await new Promise((resume) => setTimeout(resume, 500 * (attempt + 1)));
  }
  if (response.status < 500) unanswered.delete(change);  // made, or refused for good
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw Object.assign(new Error(data.error || response.statusText), { status: response.status });
  return data;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text === null || text === undefined ? "" : String(text);
  if (className) td.className = className;
  return td;
}

function money(minor, currency) {
  const digits = exponents[currency] ?? 2;
  return (Number(minor) / 10 ** digits).toFixed(digits) + " " + currency;
}

function fillOptions(datalist, values) {
  datalist.replaceChildren(...values.map((value) => Object.assign(document.createElement("option"), { value })));
}

// What the page says of a change the API answered: made, or proposed for a second lead.
function outcome(data, done) {
  return data.waits_for ? "Proposed (#" + data.proposal_id + "): " + data.waits_for + "." : done;
}

// A button that POSTs to `path`, says what came of it in `message`, and reloads what it changed.
function actionButton(label, path, message, done, reload) {
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = label;
  button.addEventListener("click", async () => {
    try {
      $(message).textContent = outcome(await call("POST", path), done);
    } catch (error) {
      $(message).textContent = "Refused: " + error.message;
    }
    await reload();
  });
  return button;
}

// An "End" button for a list entry or a suppression.
function endButton(path, what) {
  return actionButton("End", path, "list-message", "Ended " + what + ".", async () => {
    await loadLists();
    await loadProposals();
  });
}

// The proposals waiting for a second lead; a lead approves or rejects each.
async function loadProposals() {
  const data = await call("GET", "/api/proposals");
  const body = $("proposal-list").tBodies[0];
  body.replaceChildren();
  for (const p of data.proposals) {
    const row = body.insertRow();
    row.dataset.proposalId = p.proposal_id;
    cell(row, "#" + p.proposal_id);
    cell(row, p.action);
    // What it changes as it was when proposed (the entry, the case), so the approver sees it.
    const what = cell(row, p.object + " " + JSON.stringify(p.request));
    if (p.subject) {
      const subject = document.createElement("div");
      subject.className = "reason";
      subject.textContent = p.subject.list_name ? p.subject.list_name + " " + p.subject.value + " (" + p.subject.reason + ")"
        : "account " + p.subject.account_id + ", " + p.subject.decision + ", " + p.subject.event_count + " event(s)";
      what.appendChild(subject);
    }
    cell(row, p.proposed_by);
    cell(row, p.proposed_at);
    cell(row, p.expires_at);
    const decide = row.insertCell();
    if (me.role !== "lead") continue;
    const reload = async () => {
      await loadProposals();
      await loadLists();
      await loadQueue();
    };
    const path = "/api/proposals/" + p.proposal_id;
    decide.appendChild(actionButton("Approve", path + "/approve", "proposal-message", "Approved #" + p.proposal_id + ".", reload));
    decide.appendChild(actionButton("Reject", path + "/reject", "proposal-message", "Rejected #" + p.proposal_id + ".", reload));
  }
}

// Forgets the token in this tab and starts again from a blank page, so nothing the analyst saw
// stays on screen for the next person at the desk.
function signOut() {
  sessionStorage.removeItem("fraud-console-token");
  token = "";
  location.replace(location.pathname);
}

async function signIn(event) {
  if (event) event.preventDefault();
  if (event) token = $("token").value;
  try {
    me = await call("GET", "/api/me");
  } catch (e) {
    $("login-error").textContent = "Sign-in refused: " + e.message;
    return;
  }
  sessionStorage.setItem("fraud-console-token", token);
  $("login").hidden = true;
  $("console").hidden = false;
  $("who").textContent = me.name + " (" + me.role + ")";
  $("sign-out").hidden = false;
  exponents = await call("GET", "/api/currencies");
  const catalog = await call("GET", "/api/catalog");
  fillOptions($("known-lists"), catalog.lists);
  fillOptions($("known-rules"), catalog.rules);
  $("suppress-form").hidden = me.role !== "lead";
  $("suppress-lead-only").hidden = me.role === "lead";
  await loadQueue();
  await loadLists();
  await loadProposals();
  await loadRules();
}

// Per rule: hits, what the labels say of them, precision, and a bar per day as a trend.
async function loadRules() {
  const data = await call("GET", "/api/rules?days=30");
  const body = $("rule-performance").tBodies[0];
  body.replaceChildren();
  const bars = "▁▂▃▄▅▆▇█";
  for (const r of data.rules) {
    const row = body.insertRow();
    cell(row, r.rule_id);
    cell(row, r.hits);
    cell(row, r.labelled_fraud);
    cell(row, r.labelled_legitimate);
    cell(row, r.precision === null ? "no labels" : Number(r.precision).toFixed(3));
    const most = Math.max(...r.trend.map((d) => d.hits));
    cell(row, r.trend.map((d) => bars[Math.round((d.hits / most) * (bars.length - 1))]).join(""), "reason")
      .title = r.trend.map((d) => d.day + ": " + d.hits).join("\n");
  }
}

// A table of what is in force: a row per item with its fields, and a button that ends it.
function inForceRows(table, items, fields, end) {
  const body = $(table).tBodies[0];
  body.replaceChildren();
  for (const item of items) {
    const row = body.insertRow();
    for (const field of fields) cell(row, item[field]);
    const [path, what] = end(item);
    row.insertCell().appendChild(endButton(path, what));
  }
}

async function loadLists() {
  const data = await call("GET", "/api/lists");
  for (const e of data.entries) e.expires_at = e.expires_at || "until ended";
  inForceRows("list-entries", data.entries, ["list_name", "value", "reason", "author", "created_at", "expires_at"],
    (e) => ["/api/lists/entries/" + e.entry_id + "/end", e.list_name + " " + e.value]);
  inForceRows("suppressions", data.suppressions, ["rule_id", "account_id", "reason", "author", "created_at", "expires_at"],
    (s) => ["/api/suppressions/" + s.suppression_id + "/end", s.rule_id + " for " + s.account_id]);
}

async function suppress(event) {
  event.preventDefault();
  const rule = $("suppress-rule").value.trim(), account = $("suppress-account").value.trim();
  try {
    const data = await call("POST", "/api/suppressions",
      { rule, account_id: account, reason: $("suppress-reason").value.trim(), days: Number($("suppress-days").value) });
    $("suppress-message").textContent = outcome(data, "Suppressed " + rule + " for " + account + ".");
    $("suppress-form").reset();
  } catch (error) {
    $("suppress-message").textContent = "Refused: " + error.message;
  }
  await loadLists();
  await loadProposals();
}

async function addListEntry(event) {
  event.preventDefault();
  const list = $("list-name").value.trim(), value = $("list-value").value.trim();
  const entry = { value, reason: $("list-reason").value.trim() };
  if ($("list-days").value) entry.days = Number($("list-days").value);
  try {
    const data = await call("POST", "/api/lists/" + encodeURIComponent(list) + "/entries", entry);
    $("list-message").textContent = outcome(data, "Added " + value + " to " + list + ".");
    $("list-form").reset();
  } catch (error) {
    $("list-message").textContent = "Refused: " + error.message;
  }
  await loadLists();
  await loadProposals();
}

async function loadQueue(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams({
    state: $("filter-state").value, decision: $("filter-decision").value, rule: $("filter-rule").value.trim(),
  });
  if ($("filter-age").value) query.set("min_age_hours", $("filter-age").value);
  const data = await call("GET", "/api/cases?" + query);
  const body = $("cases").tBodies[0];
  body.replaceChildren();
  for (const c of data.cases) {
    const row = body.insertRow();
    row.className = "case-row";
    row.dataset.caseId = c.case_id;
    cell(row, "#" + c.case_id);
    cell(row, c.account_id);
    cell(row, c.decision, "decision-" + c.decision);
    cell(row, c.event_count);
    cell(row, c.rules.join(", "));
    cell(row, c.last_event_at);
    cell(row, c.state + (c.disposition ? " (" + c.disposition + ")" : ""));
    cell(row, c.assignee);
    row.addEventListener("click", () => openCase(c.case_id));
  }
}

async function openCase(id) {
  const data = await call("GET", "/api/cases/" + id);
  current = data.case;
  $("case").hidden = false;
  $("case-title").textContent = "Case #" + current.case_id + " — account " + current.account_id;
  const state = current.state === "closed" ? "closed as " + current.disposition + " by " + current.closed_by
    : current.assignee ? "assigned to " + current.assignee : "open, unassigned";
  $("case-summary").textContent = current.event_count + " flagged event(s), strongest decision " + current.decision +
    "; " + state;
  $("case-actions").hidden = current.state === "closed";
  $("case-message").textContent = "";
  const events = $("case-events").tBodies[0];
  events.replaceChildren();
  for (const e of data.events) {
    const row = events.insertRow();
    cell(row, e.occurred_at);
    cell(row, e.transaction_id);
    cell(row, e.decision, "decision-" + e.decision);
    cell(row, e.score);
    const reasons = cell(row, "");
    for (const a of e.alerts) {
      const line = document.createElement("div");
      line.className = "reason";
      line.textContent = a.rule_id + (a.shadow ? " (shadow)" : "") + " +" + a.score + ": " + a.reason;
      reasons.appendChild(line);
    }
  }
  showTimeline(data);
  // A lead suppressing from a case suppresses for its account, unless they typed another:
  // what the page filled in for the case before follows the case shown.
  const account = $("suppress-account");
  if (!account.value || account.value === account.dataset.filled) account.value = account.dataset.filled = current.account_id;
  const recent = $("recent").tBodies[0];
  recent.replaceChildren();
  for (const t of data.recent_transactions) {
    const row = recent.insertRow();
    cell(row, t.occurred_at);
    cell(row, t.transaction_id);
    cell(row, money(t.amount_minor, t.currency));
    cell(row, t.merchant_id);
    cell(row, t.device_id);
    cell(row, t.decision, "decision-" + t.decision);
    // Rules (live or shadow) that matched but a suppression silenced: what a decision hides.
    cell(row, (t.suppressed_rules || []).join(", "));
  }
}

// The case's story in time order: its flagged events, what analysts did, and their comments.
function showTimeline(data) {
  const items = data.events.map((e) => [e.occurred_at, "event " + e.transaction_id + " flagged: " + e.decision])
    .concat(data.audit.filter((a) => a.action !== "case.comment").map((a) => [a.at, a.actor + ": " + a.action]))
    .concat(data.comments.map((c) => [c.at, c.author + " commented: " + c.body]));
  items.sort((a, b) => Date.parse(a[0]) - Date.parse(b[0]));
  $("timeline").replaceChildren(...items.map(([at, text]) => {
    const item = document.createElement("li");
    item.textContent = at + " — " + text;
    return item;
  }));
}

// Acts on the open case; true when the API accepted it (what the analyst typed is kept otherwise).
async function act(path, body, done) {
  let data;
  try {
    data = await call("POST", "/api/cases/" + current.case_id + "/" + path, body);
  } catch (e) {
    if (e.status === 409 && current.state !== "closed") {
      // The case moved (an event joined it) while it was on screen: show what it is now.
      await openCase(current.case_id);
      $("case-message").textContent = "Not closed: " + e.message;
      return false;
    }
    $("case-message").textContent = "Refused: " + e.message;
    return false;
  }
  await openCase(current.case_id);
  $("case-message").textContent = outcome(data, done);
  await loadQueue();
  await loadRules();
  await loadProposals();
  return true;
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", signIn);
  $("filters").addEventListener("submit", loadQueue);
  $("list-form").addEventListener("submit", addListEntry);
  $("suppress-form").addEventListener("submit", suppress);
  $("comment-form").addEventListener("submit", (event) => {
    event.preventDefault();
    act("comment", { body: $("comment-body").value.trim() }, "Comment added.")
      .then((accepted) => accepted && $("comment-form").reset());
  });
  $("assign-me").addEventListener("click", () => act("assign", { assignee: me.name }, "Assigned to you."));
  // A close names the version of the case on screen: the database refuses it if an event
  // joined since, so no event is labelled unseen.
  $("close-case").addEventListener("click", () =>
    act("close", { disposition: $("disposition").value, version: current.version },
      "Closed as " + $("disposition").value + "."));
  $("sign-out").addEventListener("click", signOut);
  if (token) signIn();
});
