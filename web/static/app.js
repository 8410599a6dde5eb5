// Small enhancements; every page works without them.
(function () {
  "use strict";

  // Move focus to a form's error summary, so screen readers announce the problems at once.
  var summary = document.querySelector("[data-focus-on-load]");
  if (summary) {
    summary.focus();
  }

  // Error summary links focus their field (and scroll it into view with its label).
  document.querySelectorAll(".error-summary a[href^='#']").forEach(function (link) {
    link.addEventListener("click", function (event) {
      var field = document.getElementById(link.getAttribute("href").slice(1));
      if (!field) return;
      event.preventDefault();
      var label = document.querySelector("label[for='" + field.id + "']");
      (label || field).scrollIntoView();
      field.focus({ preventScroll: true });
    });
  });

  // "Copy token" buttons: hidden without JavaScript, since they need it.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) return;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(source.value).then(function () {
        button.textContent = "Copied";
      });
    });
  });

  // Mentions: typing @ and the start of a name in a Markdown field offers members.
  document.querySelectorAll("textarea[data-mentions]").forEach(function (field) {
    if (field.id && window.fetch) mentionSuggestions(field);
  });

  // The header's unread count, kept live. The server writes the count into every page,
  // so without JavaScript (or when the socket is down) it is right at each page load.
  var link = document.querySelector("[data-notifications]");
  if (link && "WebSocket" in window) {
    liveNotificationCount(link, document.querySelector("[data-notifications-announcer]"));
  }
})();

// A small graphql-transport-ws client for one subscription, notificationAdded: it sends
// connection_init (the session cookie authenticates the socket), subscribes after the
// newest notification the page knew of, answers pings, and reconnects with backoff,
// passing the last id it saw so the server replays what it missed. For each batch that
// arrives it asks /graphql for the true unread count (a new comment may join an entry
// that is already unread) and announces it politely.
function liveNotificationCount(link, announcer) {
  "use strict";
  var QUERY = "subscription($after: ID) { notificationAdded(after: $after) { id summary } }";
  var wrapper = link.querySelector("[data-unread]");
  var counter = link.querySelector("[data-unread-count]");
  var after = link.getAttribute("data-after") || null;
  var socket = null;
  var attempts = 0;
  var retryTimer = null;
  var refreshTimer = null;
  var stableTimer = null;
  var arrived = 0;
  var stopped = false;
  var nextId = 1;

  // The same count on the header's "Menu" button, which is all a narrow screen shows.
  var menuWrapper = document.querySelector("[data-menu-unread]");
  var menuCounter = menuWrapper && menuWrapper.querySelector(".count");

  function show(count) {
    if (!wrapper || !counter) return;
    counter.textContent = String(count);
    wrapper.hidden = count <= 0;
    if (menuWrapper && menuCounter) {
      menuCounter.textContent = String(count);
      menuWrapper.hidden = count <= 0;
    }
  }

  function announce(count) {
    if (!announcer || count <= 0) return;
    // Cleared first, so the same words twice in a row are still read out.
    announcer.textContent = "";
    window.setTimeout(function () {
      announcer.textContent = count === 1 ? "1 new notification" : count + " new notifications";
    }, 100);
  }

  function shown() {
    return (counter && parseInt(counter.textContent, 10)) || 0;
  }

  function refresh() {
    refreshTimer = null;
    var count = arrived;
    var before = shown();
    arrived = 0;
    var fallback = function () {
      show(before + count);
      announce(count);
    };
    if (!window.fetch) return fallback();
    window
      .fetch("/graphql", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: "{ viewer { unreadNotificationCount } }" }),
      })
      .then(function (response) {
        return response.json();
      })
      .then(function (body) {
        var value = body && body.data && body.data.viewer && body.data.viewer.unreadNotificationCount;
        if (typeof value !== "number") return fallback();
        show(value);
        announce(count || value - before);
      })
      .catch(fallback);
  }

  function received(payload) {
    var notification = payload && payload.data && payload.data.notificationAdded;
    if (!notification || !notification.id) return;
    after = notification.id;
    link.setAttribute("data-after", after);
    arrived += 1;
    // A burst (a replay after reconnecting, say) becomes one count and one announcement.
    if (!refreshTimer) refreshTimer = window.setTimeout(refresh, 250);
  }

  function refusedFor(payload) {
    var errors = (payload && payload.errors) || [];
    return errors.some(function (error) {
      var code = error && error.extensions && error.extensions.code;
      return code === "UNAUTHENTICATED" || code === "FORBIDDEN";
    });
  }

  function send(message) {
    if (socket && socket.readyState === 1) socket.send(JSON.stringify(message));
  }

  function connect() {
    retryTimer = null;
    if (stopped) return;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + window.location.host + "/graphql/ws", "graphql-transport-ws");
    } catch (error) {
      return retry();
    }
    var current = socket;
    current.onopen = function () {
      send({ type: "connection_init", payload: {} });
    };
    current.onmessage = function (event) {
      if (current !== socket) return;
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      switch (message.type) {
        case "connection_ack":
          // Backoff starts again only once a connection has proved itself, so a server
          // that accepts and then refuses is not hammered.
          stableTimer = window.setTimeout(function () {
            attempts = 0;
          }, 30000);
          send({ id: String(nextId++), type: "subscribe", payload: { query: QUERY, variables: { after: after } } });
          // Without a cursor the server starts from now: what came between this page being
          // written and now is only in the count, so fetch it.
          if (!after && !refreshTimer) refreshTimer = window.setTimeout(refresh, 250);
          break;
        case "ping":
          send({ type: "pong", payload: message.payload });
          break;
        case "next":
          if (refusedFor(message.payload)) {
            // Signed out since the page was written: the next page load says so.
            stopped = true;
            current.close(1000, "signed out");
          } else {
            attempts = 0;
            received(message.payload);
          }
          break;
        case "error":
          // Refused: perhaps the cursor is one the server no longer knows. Start from now.
          after = null;
          current.close(1000, "resubscribe");
          break;
        case "complete":
          // The server ended the subscription: start afresh on a new connection.
          current.close(1000, "resubscribe");
          break;
      }
    };
    current.onclose = function (event) {
      if (current !== socket) return;
      socket = null;
      if (stableTimer) window.clearTimeout(stableTimer);
      stableTimer = null;
      // 4401 and 4403: not signed in (any more), or not allowed. Retrying cannot help;
      // the next page load shows the right count.
      if (event.code === 4401 || event.code === 4403) return;
      retry();
    };
  }

  function retry() {
    if (stopped || retryTimer) return;
    // 1 s, 2 s, 4 s … up to a minute, with jitter so a restarted server is not stampeded.
    var delay = Math.min(60000, 1000 * Math.pow(2, attempts));
    attempts = Math.min(attempts + 1, 10);
    retryTimer = window.setTimeout(connect, delay / 2 + Math.random() * (delay / 2));
  }

  // Leaving the page (or going into the back-forward cache) closes the socket; coming
  // back from that cache opens a new one from the last id seen.
  window.addEventListener("pagehide", function () {
    stopped = true;
    if (retryTimer) window.clearTimeout(retryTimer);
    retryTimer = null;
    if (socket) {
      var closing = socket;
      socket = null;
      closing.close(1000, "page hidden");
    }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && stopped) {
      stopped = false;
      attempts = 0;
      connect();
    }
  });

  connect();
}

// The API explorer's form: without JavaScript it opens the answer as JSON (GET /graphql);
// here the query is posted instead (so mutations work too) and the answer shown below it.
(function () {
  "use strict";
  var form = document.querySelector("[data-explorer]");
  var result = document.querySelector("[data-explorer-result]");
  var output = document.querySelector("[data-explorer-output]");
  if (!form || !result || !output || !window.fetch) return;
  form.addEventListener("submit", function (event) {
    var body = { query: form.elements.query.value };
    var variables = form.elements.variables.value.trim();
    if (variables) {
      try {
        body.variables = JSON.parse(variables);
      } catch (error) {
        return; // The server says what is wrong with them.
      }
    }
    event.preventDefault();
    window
      .fetch("/graphql", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify(body),
      })
      .then(function (response) {
        return response.text();
      })
      .then(function (text) {
        try {
          text = JSON.stringify(JSON.parse(text), null, 2);
        } catch (error) {
          // Shown as it came.
        }
        output.textContent = text;
        result.hidden = false;
        result.querySelector("pre").focus();
      })
      .catch(function () {
        output.textContent = "The query could not be sent. Check your connection and try again.";
        result.hidden = false;
      });
  });
})();

// Mentions. As "@gra" is typed in a Markdown field, the members whose handles start so
// (the same directory /members shows) are listed under the field; Up and Down choose
// one, Enter or Tab writes "@grace-hopper " in place of what was typed, Escape closes
// the list. Without JavaScript the field is the same plain text field, and the hint
// links the directory. The field keeps the focus throughout: the list is announced in a
// polite live region, and aria-activedescendant names the option chosen.
function mentionSuggestions(field) {
  "use strict";
  var QUERY = "query($q: String!) { members(startingWith: $q, first: 6) { nodes { handle displayName } } }";
  var TYPED = /(^|[^A-Za-z0-9_@])@([A-Za-z0-9-]{1,30})$/;
  var listId = field.id + "-mentions";
  var list = document.createElement("ul");
  list.className = "mentions";
  list.id = listId;
  list.setAttribute("role", "listbox");
  list.setAttribute("aria-label", "Members to mention");
  list.hidden = true;
  var status = document.createElement("div");
  status.className = "visually-hidden";
  status.setAttribute("role", "status");
  status.setAttribute("aria-live", "polite");
  field.insertAdjacentElement("afterend", status);
  field.insertAdjacentElement("afterend", list);
  field.setAttribute("aria-autocomplete", "list");
  field.setAttribute("aria-controls", listId);
  var members = [];
  var active = -1;
  var asked = 0;
  var timer = null;

  function typed() {
    if (field.selectionStart !== field.selectionEnd) return null;
    var match = TYPED.exec(field.value.slice(0, field.selectionStart));
    return match ? match[2] : null;
  }

  function close() {
    members = [];
    active = -1;
    list.hidden = true;
    list.textContent = "";
    field.removeAttribute("aria-activedescendant");
  }

  function highlight(index) {
    active = index;
    Array.prototype.forEach.call(list.children, function (option, i) {
      option.setAttribute("aria-selected", i === index ? "true" : "false");
    });
    if (index >= 0) field.setAttribute("aria-activedescendant", listId + "-" + index);
  }

  function choose(index) {
    var word = typed();
    var member = members[index];
    if (word === null || !member) return close();
    var end = field.selectionStart;
    var start = end - word.length;
    var mention = member.handle + " ";
    field.value = field.value.slice(0, start) + mention + field.value.slice(end);
    field.selectionStart = field.selectionEnd = start + mention.length;
    close();
    status.textContent = "Mentioned @" + member.handle + ".";
  }

  function show(found) {
    close();
    members = found;
    if (!found.length) {
      status.textContent = "No member's handle starts with that.";
      return;
    }
    found.forEach(function (member, i) {
      var option = document.createElement("li");
      option.id = listId + "-" + i;
      option.setAttribute("role", "option");
      option.setAttribute("aria-selected", "false");
      option.textContent = member.displayName + " (@" + member.handle + ")";
      // mousedown, not click: the field keeps the focus and its caret.
      option.addEventListener("mousedown", function (event) {
        event.preventDefault();
        choose(i);
      });
      list.appendChild(option);
    });
    list.hidden = false;
    highlight(0);
    status.textContent =
      found.length + (found.length === 1 ? " member matches" : " members match") +
      ". Up and down arrows choose, Enter mentions, Escape closes.";
  }

  function ask(word) {
    var mine = ++asked;
    window
      .fetch("/graphql", {
        method: "POST",
        credentials: "same-origin",
        headers: { "content-type": "application/json", accept: "application/json" },
        body: JSON.stringify({ query: QUERY, variables: { q: word } }),
      })
      .then(function (response) {
        return response.json();
      })
      .then(function (body) {
        // An answer to an earlier word, overtaken by typing, is dropped.
        if (mine !== asked || typed() !== word) return;
        var nodes = body && body.data && body.data.members && body.data.members.nodes;
        show(Array.isArray(nodes) ? nodes : []);
      })
      .catch(close);
  }

  field.addEventListener("input", function () {
    window.clearTimeout(timer);
    var word = typed();
    if (word === null) return close();
    timer = window.setTimeout(function () {
      ask(word);
    }, 150);
  });

  field.addEventListener("keydown", function (event) {
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      var step = event.key === "ArrowDown" ? 1 : members.length - 1;
      highlight((active + step) % members.length);
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      choose(active);
    } else if (event.key === "Escape") {
      event.preventDefault();
      close();
    }
  });

  field.addEventListener("blur", close);
}
