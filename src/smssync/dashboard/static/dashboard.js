// smssync dashboard: small progressive additions. Every page works without this file;
// with it, an open conversation shows new SMS and status changes without a reload, and
// the reply box counts characters and SMS parts, the compose box asks the server for its
// counts, and a campaign's page fills in its counts.
"use strict";

(function () {
  const POLL_MS = 2000;
  const PHONES_MS = 3000;

  function watch(list) {
    const url = list.dataset.changes;
    let afterIn = list.dataset.afterIn;
    let afterHist = list.dataset.afterHist;
    let busy = false;

    async function poll() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const query = new URLSearchParams({ after_in: afterIn, after_hist: afterHist });
        const reply = await fetch(url + "?" + query, {
          credentials: "same-origin",
          headers: { accept: "application/json" },
        });
        if (reply.status === 401) {
          window.location.reload(); // the session ended: the page sends us to sign-in
          return;
        }
        if (!reply.ok) return;
        const changes = await reply.json();
        afterIn = String(changes.after_in);
        afterHist = String(changes.after_hist);
        for (const change of changes.items) {
          const fresh = fragmentOf(change.html);
          const old = document.getElementById(change.key);
          if (old) {
            old.replaceWith(fresh);
          } else {
            list.appendChild(fresh);
            fresh.scrollIntoView({ block: "nearest" });
          }
        }
        const empty = document.querySelector(".empty");
        if (empty && changes.items.length) empty.remove();
      } catch (error) {
        // The server is away for a moment (a restart): the next poll tries again.
      } finally {
        busy = false;
      }
    }
    window.setInterval(poll, POLL_MS);
  }

  function fragmentOf(html) {
    const template = document.createElement("template");
    template.innerHTML = html.trim();
    return template.content.firstElementChild;
  }

  // The list of conversations: a thread with new activity moves to the top.
  function watchThreads(list) {
    const url = list.dataset.threadsFeed;
    let afterAt = list.dataset.afterAt;
    let afterNumber = list.dataset.afterNumber;
    let busy = false;

    async function poll() {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const query = new URLSearchParams({ after_at: afterAt, after_number: afterNumber });
        const reply = await fetch(url + "?" + query, {
          credentials: "same-origin",
          headers: { accept: "application/json" },
        });
        if (reply.status === 401) {
          window.location.reload();
          return;
        }
        if (!reply.ok) return;
        const changes = await reply.json();
        afterAt = String(changes.after_at);
        afterNumber = changes.after_number;
        showUnread(changes.unread);
        // Oldest change first: each goes on top, so the newest ends up first.
        for (const change of changes.items) {
          for (const old of list.querySelectorAll("li[data-number]")) {
            if (old.dataset.number === change.key) old.remove();
          }
          list.prepend(fragmentOf(change.html));
        }
        const empty = document.querySelector(".empty");
        if (empty && changes.items.length) empty.remove();
      } catch (error) {
        // The server is away for a moment: the next poll tries again.
      } finally {
        busy = false;
      }
    }
    window.setInterval(poll, POLL_MS);
  }

  // The header's count of unread SMS, as the list's feed last said.
  function showUnread(total) {
    const link = document.querySelector('.top nav a[href$="/conversations"]');
    if (!link || typeof total !== "string") return;
    let badge = document.getElementById("unread-total");
    if (!total) {
      if (badge) badge.remove();
      return;
    }
    if (!badge) {
      badge = document.createElement("span");
      badge.className = "count";
      badge.id = "unread-total";
      link.append(" ", badge);
    }
    badge.textContent = total;
    badge.setAttribute("aria-label", total + " unread");
  }

  // The phones' table: its rows as the store has them now, every few seconds.
  function watchPhones(body) {
    const url = body.dataset.rowsFeed;
    window.setInterval(async () => {
      if (document.hidden) return;
      try {
        const reply = await fetch(url, { credentials: "same-origin" });
        if (reply.status === 401) window.location.reload();
        if (!reply.ok) return;
        body.innerHTML = (await reply.json()).html;
      } catch (error) {
        // Away for a moment: the next round tries again.
      }
    }, PHONES_MS);
  }

  // GSM 03.38: the basic alphabet, and the extension table's characters (two septets each).
  const GSM_BASIC =
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?" +
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
  const GSM_EXTENDED = "^{}\\[~]|€\f";

  function describe(text) {
    let septets = 0;
    let gsm = true;
    for (const ch of text) {
      if (GSM_BASIC.includes(ch)) septets += 1;
      else if (GSM_EXTENDED.includes(ch)) septets += 2;
      else {
        gsm = false;
        break;
      }
    }
    if (gsm) {
      const parts = septets <= 160 ? 1 : Math.ceil(septets / 153);
      return `${septets} characters · GSM-7 · ${text ? parts : 0} SMS`;
    }
    // UCS-2 counts UTF-16 code units: an emoji takes two.
    const units = text.length;
    const parts = units <= 70 ? 1 : Math.ceil(units / 67);
    return `${units} characters · UCS-2 · ${parts} SMS`;
  }

  function count(area) {
    const out = document.getElementById(area.dataset.counter);
    const update = () => {
      out.textContent = describe(area.value);
    };
    area.addEventListener("input", update);
    update();
  }

  // The compose box: the server counts (smssync.gsm), a moment after the typing stops.
  function countByServer(area) {
    const out = document.getElementById(area.dataset.countOut);
    const csrf = area.form.querySelector("input[name=csrf]").value;
    let timer = null;
    let asked = 0;
    async function ask() {
      const mine = ++asked;
      try {
        const reply = await fetch(area.dataset.countFeed, {
          method: "POST",
          credentials: "same-origin",
          headers: { accept: "application/json" },
          body: new URLSearchParams({ csrf: csrf, text: area.value }),
        });
        if (reply.status === 401) {
          window.location.reload();
          return;
        }
        if (!reply.ok || mine !== asked) return; // a later keystroke asked again
        const counted = await reply.json();
        let line = counted.label;
        if (counted.placeholders.length) line += " · fills " + counted.placeholders.map((p) => "{" + p + "}").join(" ");
        if (counted.problem) line += " · " + counted.problem;
        out.textContent = line;
      } catch (error) {
        // The server is away for a moment: the next keystroke asks again.
      }
    }
    area.addEventListener("input", () => {
      window.clearTimeout(timer);
      timer = window.setTimeout(ask, 250);
    });
    ask();
  }

  // A campaign's progress and counts, as the store has them now.
  function watchCampaign(section) {
    const url = section.dataset.countsFeed;
    let busy = false;
    let last = null;
    window.setInterval(async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const reply = await fetch(url, { credentials: "same-origin", headers: { accept: "application/json" } });
        if (reply.status === 401) window.location.reload();
        if (!reply.ok) return;
        const html = (await reply.json()).html;
        // Only a change is written: the same counts again would be read out again by a
        // screen reader, and would take the focus off a button.
        if (html !== last) {
          section.innerHTML = html;
          last = html;
        }
      } catch (error) {
        // Away for a moment: the next round tries again.
      } finally {
        busy = false;
      }
    }, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    for (const area of document.querySelectorAll("[data-count-feed]")) countByServer(area);
    const campaign = document.querySelector("[data-counts-feed]");
    if (campaign) watchCampaign(campaign);
    const list = document.querySelector("[data-changes]");
    if (list) watch(list);
    const threads = document.querySelector("[data-threads-feed]");
    if (threads) watchThreads(threads);
    const phones = document.querySelector("[data-rows-feed]");
    if (phones) watchPhones(phones);
    for (const area of document.querySelectorAll("[data-counter]")) count(area);
    const thread = document.getElementById("thread");
    if (thread && thread.lastElementChild) thread.lastElementChild.scrollIntoView({ block: "nearest" });
  });
})();
