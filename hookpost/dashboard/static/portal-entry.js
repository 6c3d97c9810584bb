// The portal link is /app-portal#key=...: the fragment never reaches the server's logs.
// Exchange it for the HttpOnly session cookie, forget it, and open the portal.
(function () {
  "use strict";
  var status = document.getElementById("portal-status");
  var match = /(?:^#|&)key=([^&]+)/.exec(window.location.hash);
  history.replaceState(null, "", window.location.pathname);
  if (!match) {
    status.textContent = "This portal link has no key: open the link you were given.";
    return;
  }
  fetch("/app-portal/session", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ key: decodeURIComponent(match[1]) }),
  })
    .then(function (response) {
      return response.json().then(function (body) {
        if (!response.ok) throw new Error(body.detail || "the portal could not be opened");
        window.location.replace(body.next);
      });
    })
    .catch(function (error) {
      status.textContent = "The portal could not be opened: " + error.message;
    });
})();
