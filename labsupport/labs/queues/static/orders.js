// Q5 in a browser: POST /orders, then notifications pushed back over SSE.
// URLs are relative, so the page works served directly or through a proxy.
(function () {
  const params = new URLSearchParams(window.location.search);
  const user = document.getElementById("user");
  const status = document.getElementById("status");
  const list = document.getElementById("notifications");
  if (params.get("user")) user.value = params.get("user");

  let source = null;
  function listen() {
    if (source) source.close();
    const url = "events?client_id=" + encodeURIComponent("user-" + user.value);
    source = new EventSource(url);  // reconnects by itself and sends Last-Event-ID
    source.addEventListener("connected", () => { status.textContent = "connected"; });
    source.addEventListener("notification", (event) => {
      const note = JSON.parse(event.data).data;
      const line = document.createElement("div");
      line.textContent = note.text;  // text, never HTML
      line.dataset.orderId = note.order_id;
      list.prepend(line);
    });
    source.onerror = () => { status.textContent = "reconnecting…"; };
  }

  document.getElementById("order").addEventListener("submit", async (event) => {
    event.preventDefault();
    const reply = await fetch("orders", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ user_id: Number(user.value),
                             item: document.getElementById("item").value }),
    });
    const body = await reply.json();
    status.textContent = reply.ok ? "order " + body.order_id + " placed"
                                  : "error: " + body.error.message;
  });
  user.addEventListener("change", listen);
  listen();
})();
