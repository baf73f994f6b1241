// The operator console: polls /console.json every 2 s and redraws the state and the
// screen pop; the presence buttons post in the background. Text only via textContent.
"use strict";

(function () {
  const root = document.getElementById("console");
  if (!root) return;
  const url = root.dataset.url;
  const POLL_MS = 2000;

  function el(tag, text, className) {
    const node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function list(title, items, describe) {
    const fragment = document.createDocumentFragment();
    fragment.appendChild(el("h3", title));
    const ul = el("ul");
    if (items.length === 0) ul.appendChild(el("li", "无"));
    items.forEach((item) => ul.appendChild(el("li", describe(item))));
    fragment.appendChild(ul);
    return fragment;
  }

  function renderCall(call) {
    const box = document.getElementById("screen-pop");
    box.replaceChildren();
    if (!call) {
      box.appendChild(el("p", "现在没有来电。", "quiet"));
      return;
    }
    const heading = el("h2", "当前来电：" + call.line + " " + call.number + " ");
    heading.appendChild(el("small", call.since));
    box.appendChild(heading);
    const r = call.resident;
    if (!r) {
      box.appendChild(el("p", "未登记的来电号码。"));
      return;
    }
    const card = el("dl", null, "card");
    [
      ["姓名", r.name],
      ["年龄", r.age === null ? "不详" : r.age + "岁"],
      ["地址", r.address],
      ["社区", r.community],
      ["独居", r.lives_alone ? "是（独居老人）" : "否"],
      ["病史", r.medical_notes || "无记录"],
      ["方言", r.dialect],
    ].forEach(([term, value]) => {
      card.appendChild(el("dt", term));
      card.appendChild(el("dd", value));
    });
    box.appendChild(card);
    box.appendChild(list("紧急联系人", call.contacts, (c) => c.name + "（" + c.relation + "）" + c.phone));
    box.appendChild(list("最近5次来电", call.recent_calls, (c) => c.at + " " + c.line + " " + c.outcome));
    box.appendChild(
      list("未完成的服务单", call.open_requests, (s) => s.at + " " + s.type + (s.callback ? "（要求回电）" : ""))
    );
    box.appendChild(
      list("未完成的派单", call.open_tasks, (t) => t.id + "号 " + t.need + " " + t.state + (t.helper ? " 助老员" + t.helper : ""))
    );
  }

  // The forms stay in the page (a need being chosen is kept); only their call changes.
  function renderForms(data) {
    const sos = document.getElementById("sos-visit");
    const offer = data.sos_call;
    sos.hidden = !offer;
    if (offer) {
      sos.elements.call.value = offer.sid;
      document.getElementById("sos-visit-call").textContent = offer.title;
      document.getElementById("sos-visit-task").textContent = offer.task;
    }
    const need = document.getElementById("need-form");
    const call = data.call;
    need.hidden = !(call && call.resident);
    if (call) need.elements.call.value = call.sid;
  }

  function render(data) {
    const state = document.getElementById("state");
    state.textContent = data.state_name;
    state.className = "state state-" + data.state;
    const error = document.getElementById("console-error");
    error.textContent = data.error || "";
    error.hidden = !data.error;
    renderCall(data.call);
    renderForms(data);
  }

  function poll() {
    fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then((response) => (response.ok ? response.json() : null))
      .then((data) => data && render(data))
      .catch(() => {})
      .finally(() => window.setTimeout(poll, POLL_MS));
  }

  root.querySelectorAll("form.state-form").forEach((form) => {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      fetch(form.action, {
        method: "POST",
        body: new FormData(form),
        headers: { Accept: "application/json" },
        credentials: "same-origin",
      })
        .then((response) => response.json())
        .then(render)
        .catch(() => form.submit());
    });
  });

  window.setTimeout(poll, POLL_MS);
})();
