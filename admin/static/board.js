// The live board: fetch /board.json every 2 seconds and redraw the figures in place.
"use strict";

(function () {
  const PERIOD_MS = 2000;
  const root = document.getElementById("board");
  if (!root) return;

  function callItem(call) {
    const li = document.createElement("li");
    if (call.escalated) li.className = "escalated";
    const what = (call.escalated ? "紧急升级　" : "") +
      (call.state === "offered" ? "振铃中" : "排队中") + "　已等 " + call.waited + " 秒　";
    li.appendChild(document.createTextNode(what));
    const link = document.createElement("a");
    link.href = "/calls/" + encodeURIComponent(call.sid);
    link.textContent = call.sid.slice(-6);
    li.appendChild(link);
    return li;
  }

  function draw(data) {
    for (const [key, queue] of Object.entries(data.queues)) {
      const box = document.getElementById("queue-" + key);
      if (!box) continue;
      box.querySelector(".count").textContent = String(queue.calls.length);
      box.querySelector(".longest").textContent = String(queue.longest);
      box.querySelector(".calls").replaceChildren(...queue.calls.map(callItem));
    }
    for (const [key, group] of Object.entries(data.operators)) {
      const box = document.getElementById("state-" + key);
      if (!box) continue;
      box.querySelector(".count").textContent = String(group.count);
      box.querySelector(".names").textContent = group.names.join("、");
    }
    document.getElementById("open-alerts").textContent = String(data.alerts);
    document.getElementById("updated").textContent =
      "更新于 " + new Date().toLocaleTimeString("zh-CN", { hour12: false });
  }

  async function poll() {
    try {
      const response = await fetch(root.dataset.source, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (response.ok) draw(await response.json());
      else document.getElementById("updated").textContent = "连接中断（" + response.status + "）";
    } catch (error) {
      document.getElementById("updated").textContent = "连接中断，稍后重试";
    }
    setTimeout(poll, PERIOD_MS);
  }

  setTimeout(poll, PERIOD_MS);
})();
