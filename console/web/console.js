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

async function call(method, path, body, { retries = 2 } = {}) {
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
      if (response.status !== 503 || attempt === retries) break;
    } catch (error) {
      if (attempt === retries) throw error;
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

// An amount in the currency's minor units, with its code and the analyst's digit grouping:
// "EUR 12,500.00". Put in a cell whose class right-aligns it.
function money(minor, currency) {
  const digits = exponents[currency] ?? 2;
  const value = Number(minor) / 10 ** digits;
  try {
    return new Intl.NumberFormat(undefined, { style: "currency", currency, currencyDisplay: "code",
      minimumFractionDigits: digits, maximumFractionDigits: digits }).format(value);
  } catch {  // a code the browser does not know
    return value.toFixed(digits) + " " + currency;
  }
}

function amountCell(row, minor, currency) {
  return cell(row, minor === null || minor === undefined ? "" : money(minor, currency), "amount");
}

// A decision, disposition or state as a badge: block, review, allow, fraud, legitimate, ….
function badge(text) {
  const span = document.createElement("span");
  span.className = "badge badge-" + text;
  span.textContent = text;
  return span;
}

function badgeCell(row, text) {
  const td = row.insertCell();
  if (text) td.appendChild(badge(text));
  return td;
}

const thisYear = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" });
const anyYear = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const absolute = { format: (at) => (at.getFullYear() === new Date().getFullYear() ? thisYear : anyYear).format(at) };
const exact = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "long" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

// A time as the analyst reads it, in their own time zone: "3 h ago" within a week, else the
// date and time; the exact time (with the zone) on hover, the stored value in datetime.
function when(iso) {
  const element = document.createElement("time");
  if (!iso) return element;
  const at = new Date(iso);
  element.dateTime = iso;
  element.title = exact.format(at);
  const seconds = (at.getTime() - Date.now()) / 1000;
  const units = [["day", 86400], ["hour", 3600], ["minute", 60]];
  if (Math.abs(seconds) < 60) element.textContent = "just now";
  else if (Math.abs(seconds) >= 7 * 86400) element.textContent = absolute.format(at);
  else {
    const [unit, size] = units.find(([, size]) => Math.abs(seconds) >= size);
    element.textContent = relative.format(Math.round(seconds / size), unit);
  }
  return element;
}

function timeCell(row, iso) {
  const td = row.insertCell();
  td.appendChild(when(iso));
  return td;
}

// What a panel says while it loads, when it has nothing, or when it failed.
function showState(id, text, failed = false) {
  $(id).textContent = text;
  $(id).classList.toggle("error", failed);
  $(id).hidden = !text;
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
    timeCell(row, p.proposed_at);
    timeCell(row, p.expires_at);
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
  $("sections").hidden = false;
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
    cell(row, r.hits, "num");
    cell(row, r.labelled_fraud, "num");
    cell(row, r.labelled_legitimate, "num");
    cell(row, r.precision === null ? "no labels" : Number(r.precision).toFixed(3), "num");
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
    // Times (fields named *_at) as the analyst reads them; "until ended" as it is.
    for (const field of fields) {
      if (field.endsWith("_at") && item[field] !== "until ended") timeCell(row, item[field]);
      else cell(row, item[field]);
    }
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

// The queue, most recent activity first. The open case stays selected when it is still listed.
let queue = [];  // the case ids listed, in order

async function loadQueue(event) {
  if (event) event.preventDefault();
  const query = new URLSearchParams({
    state: $("filter-state").value, decision: $("filter-decision").value, rule: $("filter-rule").value.trim(),
  });
  if ($("filter-age").value) query.set("min_age_hours", $("filter-age").value);
  if (!queue.length) showState("queue-state", "Loading cases…");
  let data;
  try {
    data = await call("GET", "/api/cases?" + query);
  } catch (error) {
    showState("queue-state", "Could not load the queue: " + error.message, true);
    return;
  }
  const body = $("cases").tBodies[0];
  body.replaceChildren();
  queue = data.cases.map((c) => c.case_id);
  $("queue-count").textContent = "(" + data.cases.length + ")";
  showState("queue-state", data.cases.length ? "" : "No cases match these filters.");
  for (const c of data.cases) {
    const row = body.insertRow();
    row.className = "case-row";
    row.tabIndex = 0;
    row.dataset.caseId = c.case_id;
    if (current && current.case_id === c.case_id) row.setAttribute("aria-current", "true");
    const name = cell(row, "#" + c.case_id + " ");
    name.append(Object.assign(document.createElement("span"), { className: "account", textContent: c.account_id }));
    const decision = badgeCell(row, c.decision);
    decision.append(" ", badge(c.state));
    if (c.disposition) decision.append(" ", badge(c.disposition));
    cell(row, c.event_count, "num");
    cell(row, c.rules.join(", "), "rules");
    timeCell(row, c.last_event_at);
    cell(row, c.assignee);
    row.addEventListener("click", () => openCase(c.case_id));
    row.addEventListener("keydown", (e) => e.key === "Enter" && openCase(c.case_id));
  }
}

// Opens the case `step` places from the one last asked for in the queue (the first, when
// none was or it is not listed): a second j pressed before the first case arrived counts.
let wanted = null;
function move(step) {
  if (!queue.length) return;
  const at = queue.indexOf(wanted);
  const next = at < 0 ? 0 : Math.min(Math.max(at + step, 0), queue.length - 1);
  openCase(queue[next]);
}

// Shows case `id`. Answers can arrive out of order: only the one last asked for is shown.
async function openCase(id) {
  wanted = id;
  let data;
  try {
    data = await call("GET", "/api/cases/" + id);
  } catch (error) {
    if (wanted === id) showState("case-placeholder", "Could not open case #" + id + ": " + error.message, true);
    return;
  }
  if (wanted !== id) return;
  current = data.case;
  current.events = data.events;
  $("case-placeholder").hidden = true;
  $("case-detail").hidden = false;
  for (const row of $("cases").tBodies[0].rows) {
    const selected = Number(row.dataset.caseId) === current.case_id;
    row.removeAttribute("aria-current");
    if (selected) {
      row.setAttribute("aria-current", "true");
      row.focus({ preventScroll: true });
      row.scrollIntoView({ block: "nearest" });
    }
  }
  $("case-title").textContent = "Case #" + current.case_id + " — account " + current.account_id;
  $("case-badges").replaceChildren(badge(current.decision), badge(current.state),
    ...(current.disposition ? [badge(current.disposition)] : []));
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
    timeCell(row, e.occurred_at);
    cell(row, e.transaction_id, "id");
    amountCell(row, e.alerts[0]?.amount_minor, e.alerts[0]?.currency);
    badgeCell(row, e.decision);
    cell(row, e.score, "num");
    const reasons = cell(row, "");
    for (const a of e.alerts) {
      const line = document.createElement("div");
      line.className = "reason";
      line.textContent = a.rule_id + (a.shadow ? " (shadow)" : "") + " +" + a.score + ": " + a.reason;
      reasons.appendChild(line);
    }
  }
  showActivity(data.activity);
  showTimeline(data);
  // A lead suppressing from a case suppresses for its account, unless they typed another:
  // what the page filled in for the case before follows the case shown.
  const account = $("suppress-account");
  if (!account.value || account.value === account.dataset.filled) account.value = account.dataset.filled = current.account_id;
  const recent = $("recent").tBodies[0];
  recent.replaceChildren();
  for (const t of data.recent_transactions) {
    const row = recent.insertRow();
    timeCell(row, t.occurred_at);
    cell(row, t.transaction_id, "id");
    amountCell(row, t.amount_minor, t.currency);
    cell(row, t.merchant_id);
    cell(row, t.device_id);
    badgeCell(row, t.decision);
    // Rules (live or shadow) that matched but a suppression silenced: what a decision hides.
    cell(row, (t.suppressed_rules || []).join(", "));
  }
  loadLinks();
}

const svgNamespace = "http://www.w3.org/2000/svg";

function svgElement(name, attributes, text) {
  const element = document.createElementNS(svgNamespace, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (text !== undefined) element.textContent = text;
  return element;
}

// The account's activity as a picture: each transaction a dot at its time and amount, in its
// decision's colour, the case's own ringed and larger. Amounts in the account's most used
// currency (the others are counted below it: amounts in two currencies share no axis).
function showActivity(activity) {
  const figure = $("activity");
  figure.replaceChildren();
  if (!activity.length) {
    showState("activity-state", "No transactions in the 30 days up to the case's last event.");
    return;
  }
  const uses = new Map();
  for (const t of activity) uses.set(t.currency, (uses.get(t.currency) || 0) + 1);
  const currency = [...uses].sort((a, b) => b[1] - a[1])[0][0];
  const drawn = activity.filter((t) => t.currency === currency);
  const [width, height, left, right, top, bottom] = [640, 170, 110, 12, 12, 26];
  // From the first transaction drawn (at most 30 days before the case's last event) to the
  // latest; an hour at least, so that a single transaction has a place.
  const times = drawn.map((t) => Date.parse(t.occurred_at));
  const end = Math.max(...times, Date.parse(current.last_event_at)), start = Math.min(...times, end - 3600_000);
  const most = Math.max(...drawn.map((t) => Number(t.amount_minor)), 1);
  const x = (ms) => left + ((ms - start) / (end - start)) * (width - left - right);
  const y = (minor) => top + (1 - minor / most) * (height - top - bottom);
  const flagged = drawn.filter((t) => t.decision === "review" || t.decision === "block").length;
  const chart = svgElement("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "chart",
    "aria-label": `${drawn.length} transactions in ${currency} from ${absolute.format(new Date(start))} to ` +
      `${absolute.format(new Date(end))}, ${flagged} flagged, the largest ${money(most, currency)}` });
  chart.append(svgElement("line", { x1: left, x2: width - right, y1: y(0), y2: y(0), class: "axis" }),
    svgElement("line", { x1: left, x2: left, y1: y(most), y2: y(0), class: "axis" }),
    svgElement("text", { x: left - 6, y: y(most) + 4, "text-anchor": "end" }, money(most, currency)),
    svgElement("text", { x: left - 6, y: y(0) + 4, "text-anchor": "end" }, money(0, currency)),
    svgElement("text", { x: left, y: height - 6, "text-anchor": "start" }, absolute.format(new Date(start))),
    svgElement("text", { x: width - right, y: height - 6, "text-anchor": "end" }, absolute.format(new Date(end))));
  for (const t of drawn) {
    const dot = svgElement("circle", { cx: x(Date.parse(t.occurred_at)), cy: y(Number(t.amount_minor)),
      r: t.in_case ? 5.5 : 3.5, class: "dot dot-" + (t.decision || "unknown") + (t.in_case ? " in-case" : "") });
    dot.append(svgElement("title", {}, t.transaction_id + ": " + money(t.amount_minor, t.currency) + ", " +
      (t.decision || "no decision") + ", " + exact.format(new Date(t.occurred_at)) + (t.in_case ? " (this case)" : "")));
    chart.append(dot);
  }
  figure.append(chart);
  const others = activity.length - drawn.length;
  showState("activity-state", (activity.length === 500 ? "The 500 latest transactions. " : "") +
    (others ? others + " in other currencies are not drawn." : ""));
}

// Who else used the case's account's cards, devices, addresses and payees in the period: each
// other account once per shared value, with its decisions, labels and open case a click away.
// A links answer is shown only if it is the last one asked for (another case or period may
// have been chosen meanwhile); one past its time budget is not asked again.
let linksAsked = 0;
async function loadLinks() {
  const asked = ++linksAsked;
  const body = $("links").tBodies[0];
  body.replaceChildren();
  showState("links-state", "Looking for accounts that shared them…");
  let data;
  try {
    data = await call("GET", "/api/cases/" + current.case_id + "/links?days=" + $("links-days").value, undefined,
      { retries: 0 });
  } catch (error) {
    if (asked === linksAsked) showState("links-state", "Could not load the links: " + error.message, true);
    return;
  }
  if (asked !== linksAsked) return;
  body.replaceChildren();
  const unsearched = data.not_indexed.length ? " Not searched (the history has no index for them): " +
    data.not_indexed.join(", ") + "." : "";
  showState("links-state", (data.links.length ? "" : "No other account shared them in " + data.days + " days.") +
    unsearched);
  for (const link of data.links) {
    const row = body.insertRow();
    cell(row, link.field);
    cell(row, link.value, "reason");
    cell(row, link.account_id);
    cell(row, link.events, "num");
    const decisions = row.insertCell();
    if (link.blocks) decisions.append(badge("block"), " " + link.blocks + " ");
    if (link.reviews) decisions.append(badge("review"), " " + link.reviews);
    const labels = row.insertCell();
    if (link.labelled_fraud) labels.append(badge("fraud"), " " + link.labelled_fraud + " ");
    if (link.labelled_legitimate) labels.append(badge("legitimate"), " " + link.labelled_legitimate);
    timeCell(row, link.last_seen);
    const open = row.insertCell();
    if (link.open_case) {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = "Open #" + link.open_case.case_id;
      button.addEventListener("click", () => openCase(link.open_case.case_id));
      open.append(button, " ", badge(link.open_case.decision));
    }
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
    item.append(when(at), " — " + text);
    return item;
  }));
}

// Acts on case `id` (the open one unless said); true when the API accepted it (what the
// analyst typed is kept otherwise).
async function act(path, body, done, id = current.case_id) {
  // Said on the case if it is still the one on screen (another may have been opened meanwhile).
  const say = (text) => {
    if (wanted === id) $("case-message").textContent = text;
    else showState("queue-state", "Case #" + id + ": " + text);
  };
  let data;
  try {
    data = await call("POST", "/api/cases/" + id + "/" + path, body);
  } catch (e) {
    if (e.status === 409 && path === "close") {
      // The case moved (an event joined it) while it was on screen: show what it is now.
      if (wanted === id) await openCase(id);
      say("Not closed: " + e.message);
      return false;
    }
    say("Refused: " + e.message);
    return false;
  }
  if (wanted === id) await openCase(id);
  say(outcome(data, done));
  await loadQueue();
  await loadRules();
  await loadProposals();
  return true;
}

// The close dialog: no disposition is chosen for the analyst, and before confirming it names
// what the close will write: the transactions it labels, or that it waits for a second lead.
function chosenDisposition() {
  return document.querySelector("#close-form input[name=disposition]:checked")?.value || "";
}

// The case the dialog closes, as it was when the dialog opened: what the page shows may
// change meanwhile (a case opened by an earlier key), the close does not.
let closing = null;

function describeClose() {
  const disposition = chosenDisposition();
  $("confirm-close").disabled = !disposition;
  const labels = $("close-labels");
  labels.replaceChildren();
  if (!disposition) {
    $("close-effect").textContent = "Choose a disposition: nothing is chosen for you.";
    return;
  }
  if (disposition === "unsure") {
    $("close-effect").textContent = "Closing as unsure labels no transaction.";
    return;
  }
  const ids = [...new Set(closing.events.map((e) => e.transaction_id))];
  const more = closing.event_count > closing.events.length ? " (and those of its " +
    (closing.event_count - closing.events.length) + " older events)" : "";
  const second = disposition === "legitimate" && closing.decision === "block"
    ? " Closing a block case as legitimate lowers the bank's decisions: it is proposed, and takes effect " +
      "when a second lead approves it." : "";
  $("close-effect").textContent = "Closing case #" + closing.case_id + " as " + disposition + " labels " +
    (ids.length === 1 ? "its transaction" : "these " + ids.length + " transactions") + " " + disposition + more +
    " (a transaction another case already labelled keeps its label)." + second;
  for (const e of closing.events) {
    const item = document.createElement("li");
    const amount = e.alerts[0] ? " — " + money(e.alerts[0].amount_minor, e.alerts[0].currency) : "";
    item.textContent = e.transaction_id + amount + " — ";
    item.append(when(e.occurred_at));
    labels.appendChild(item);
  }
}

function startClose() {
  if (!current || current.state === "closed") return;
  closing = current;
  $("close-form").reset();
  $("close-title").textContent = "Close case #" + closing.case_id + " — account " + closing.account_id;
  describeClose();
  $("close-dialog").showModal();
  document.querySelector("#close-form input[name=disposition]").focus();
}

function confirmClose() {
  const disposition = chosenDisposition();
  if (!disposition) return;
  // A close names the version of the case on screen: the database refuses it if an event
  // joined since, so no event is labelled unseen.
  act("close", { disposition, version: closing.version }, "Closed as " + disposition + ".", closing.case_id);
}

// The queue's shortcuts, listed on the page; never while the analyst types or a dialog is open.
// They can be turned off (a speech-input user's words would otherwise trigger them), and the
// choice is remembered in this browser.
function shortcut(event) {
  if (!$("shortcuts-on").checked) return;
  if (event.ctrlKey || event.metaKey || event.altKey || event.isComposing || $("console").hidden ||
      $("close-dialog").open) return;
  if (event.target.closest("input, textarea, select")) return;
  // The arrows scroll the page, except in the queue; a held key repeats only moves.
  if (event.key.startsWith("Arrow") && !event.target.closest("#queue")) return;
  if (event.repeat && !["j", "k", "ArrowDown", "ArrowUp"].includes(event.key)) return;
  const actions = {
    j: () => move(1), ArrowDown: () => move(1), k: () => move(-1), ArrowUp: () => move(-1),
    a: () => current && current.state !== "closed" && $("assign-me").click(),
    c: startClose,
    l: () => $("links").querySelector("button")?.focus(),
    "/": () => $("filter-rule").focus(),
  };
  const action = actions[event.key];
  if (!action) return;
  event.preventDefault();
  action();
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
  $("close-case").addEventListener("click", startClose);
  $("close-form").addEventListener("change", describeClose);
  $("close-form").addEventListener("submit", confirmClose);  // its one submit button, or Enter on a choice
  $("cancel-close").addEventListener("click", () => $("close-dialog").close());
  $("links-days").addEventListener("change", loadLinks);
  $("sign-out").addEventListener("click", signOut);
  $("shortcuts-on").checked = localStorage.getItem("fraud-console-shortcuts") !== "off";
  $("shortcuts-on").addEventListener("change", () =>
    localStorage.setItem("fraud-console-shortcuts", $("shortcuts-on").checked ? "on" : "off"));
  document.addEventListener("keydown", shortcut);
  if (token) signIn();
});
