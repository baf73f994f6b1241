// The live board: fetch /board.json every 2 seconds and redraw the figures in place.
"use strict";

(function () {
  const PERIOD_MS = 2000;
  const root = document.getElementById("board");
  if (!root) return;

  function callItem(call) {
    const li = document.createElement("li");
    if (call.escalated) li.className = "escalated";
    const stage = call.stage || (call.escalated ? "紧急升级" : "");
    const what = (stage ? stage + "　" : "") + call.what + "　已等 " + call.waited + " 秒　";
    li.appendChild(document.createTextNode(what));
    const link = document.createElement("a");
    link.href = "/calls/" + encodeURIComponent(call.sid);
    link.textContent = call.sid.slice(-6);
    li.appendChild(link);
    return li;
  }

  function callbackItem(callback) {
    const li = document.createElement("li");
    li.className = "escalated";
    li.appendChild(document.createTextNode("待回拨　挂断已 " + callback.since + " 秒　"));
    const link = document.createElement("a");
    link.href = "/calls/" + encodeURIComponent(callback.sid);
    link.textContent = callback.sid.slice(-6);
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
    document.getElementById("stage-escalated").textContent = String(data.stages.escalated);
    document.getElementById("stage-duty").textContent = String(data.stages.duty);
    document.getElementById("callback-count").textContent = String(data.callbacks.length);
    document.getElementById("callbacks").replaceChildren(...data.callbacks.map(callbackItem));
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
