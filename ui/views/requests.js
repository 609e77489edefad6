// The Requests view (#/requests): what agents asked to reach, waiting for
// an answer (with the time left), and the history (who answered, when).
// The agent's words are text: `h` only ever makes text nodes of strings.

import { api } from "../api.js";
import { $, h, showBanner } from "../dom.js";
import { countdown, outcomeText, scopeText, splitRequests } from "../logic.js";
import { loadRequests, store } from "../store.js";
import { redraw } from "../refresh.js";

let ticker = null;

export function requestsView() {
  const { pending, history } = splitRequests(store.requests, Date.now(), store.requestsAt);
  startTicking(pending.length > 0);
  return h("div", { id: "requests" },
    h("section", { class: "card", id: "pending" },
      h("h2", {}, "Waiting for you"),
      pending.length
        ? pending.map(pendingCard)
        : h("p", { class: "muted", id: "no-pending" }, "No requests waiting. Agents in bottles with supervise on ask here for hosts their bottle does not allow."),
    ),
    h("section", { class: "card", id: "history" },
      h("h2", {}, "History"),
      history.length
        ? h("table", {},
            h("thead", {}, h("tr", {}, ["Asked", "Bottle", "Host", "Scope", "Reason", "Outcome", "Answered"].map((c) => h("th", {}, c)))),
            h("tbody", {}, history.map((r) => h("tr", { class: "past", dataset: { id: r.proposal.id } },
              h("td", { class: "mono" }, shortTime(r.proposal.created)),
              h("td", {}, r.proposal.bottle),
              h("td", { class: "mono" }, `${r.proposal.scope.host}:${r.proposal.scope.port}`),
              h("td", {}, scopeText(r.proposal.scope)),
              h("td", { class: "reason" }, r.proposal.reason),
              h("td", { class: "outcome" }, outcomeText(r)),
              h("td", { class: "mono" }, shortTime(r.decision?.at)),
            ))))
        : h("p", { class: "muted" }, "Nothing answered yet."),
    ),
  );
}

function pendingCard(r) {
  const p = r.proposal;
  // The note is read from the page when answering: a redraw keeps the
  // input the user typed into (dom.js `morph`), not the one made here.
  const answer = (kind) => async (e) => {
    const note = e.currentTarget.closest("article.request").querySelector("input.note").value;
    try {
      await api.answerRequest(p.bottle, p.id, kind, kind === "deny" ? note : null);
      showBanner(`${{ once: "Allowed once", hour: "Allowed for 1 hour", always: "Always allowed", deny: "Denied" }[kind]}: ${p.scope.host}:${p.scope.port} for ${p.bottle}.`);
    } catch (e) {
      showBanner(String(e));
    }
    await loadRequests();
    redraw();
  };
  return h("article", { class: "request", dataset: { id: p.id, bottle: p.bottle } },
    h("div", { class: "row" },
      h("strong", {}, p.bottle), h("span", {}, "asks for"), h("span", { class: "mono host" }, `${p.scope.host}:${p.scope.port}`),
      h("span", { class: "muted" }, p.origin === "held" ? "(a request is held, waiting)" : ""),
      h("span", { class: "spacer" }),
      h("span", { class: "countdown mono", dataset: { id: p.id, left: r.secondsLeft } }, countdown(r.secondsLeft)),
    ),
    h("p", { class: "muted" }, scopeText(p.scope)),
    h("blockquote", { class: "reason" }, p.reason),
    h("div", { class: "row answers" },
      h("button", { class: "primary", dataset: { answer: "once" }, onclick: answer("once") }, "Allow once"),
      h("button", { dataset: { answer: "hour" }, onclick: answer("hour") }, "Allow for 1 hour"),
      h("button", { dataset: { answer: "always" }, onclick: answer("always"), title: "Adds the rule to the bottle's file" }, "Always allow"),
      h("span", { class: "spacer" }),
      h("input", { class: "note", placeholder: "Note to the agent (optional)", "aria-label": "Note to the agent" }),
      h("button", { class: "deny", dataset: { answer: "deny" }, onclick: answer("deny") }, "Deny"),
    ),
  );
}

/** Counts the pending requests down once a second while the view shows some. */
function startTicking(on) {
  if (ticker && !on) { clearInterval(ticker); ticker = null; }
  if (!on || ticker) return;
  ticker = setInterval(() => {
    if (!$("#requests")) { clearInterval(ticker); ticker = null; return; }
    const { pending } = splitRequests(store.requests, Date.now(), store.requestsAt);
    for (const r of pending) {
      const el = $(`.countdown[data-id="${r.proposal.id}"]`);
      if (el) el.textContent = countdown(r.secondsLeft);
    }
  }, 1000);
}

const shortTime = (t) => (t ? t.replace("T", " ").slice(0, 19) : "–");
