"use strict";
// The Tenant Settings page (admin/timelogging/tenant/change_form.html), enhanced progressively:
// without JavaScript every field is shown and everything works with plain form posts.
//
// - Fields shown only when they apply: the tag chooser with Apply to = "Based on Tag"; the PSA
//   user picker and the specified user's fields with Log as = "A specified PSA user". The form
//   carries data-apply-to / data-log-as and tenant_settings.css hides the rows (a row showing
//   an error is never hidden), so rows added later (the picker) follow too.
// - The per-automation table: a row whose "Log time" is off is dimmed.
// - Preview: posts the form as on screen to the preview endpoint and shows the answer.
// - PSA connection: "Test connection" answers in the panel instead of reloading the page.
(() => {
  const FORM_ID = "tenant_form";

  function checkedValue(form, name) {
    const checked = form.querySelector(`input[name="${name}"]:checked`);
    return checked ? checked.value : "";
  }

  function conditionalFields(form) {
    function update() {
      form.dataset.applyTo = checkedValue(form, "apply_to");
      form.dataset.logAs = checkedValue(form, "log_as");
    }
    form.addEventListener("change", (event) => {
      if (["apply_to", "log_as"].includes(event.target.name)) {
        update();
      }
    });
    update();
  }

  function automationTable(form) {
    const group = document.getElementById("automation_set-group");
    if (!group) {
      return;
    }
    function sync(checkbox) {
      const row = checkbox.closest("tr");
      if (row) {
        row.classList.toggle("automation-off", !checkbox.checked);
      }
    }
    group.querySelectorAll('input[type="checkbox"][name$="-log_time"]').forEach(sync);
    group.addEventListener("change", (event) => {
      if (event.target.matches('input[type="checkbox"][name$="-log_time"]')) {
        sync(event.target);
      }
    });
  }

  // The form's values as a submit would send them.
  function formValues(form) {
    return new FormData(form);
  }

  function postForJson(url, body) {
    return fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-Requested-With": "XMLHttpRequest" },
    }).then((response) =>
      response
        .json()
        .catch(() => ({ error: `piadesk answered HTTP ${response.status}.` }))
        .then((answer) => ({ ok: response.ok, answer })),
    );
  }

  function textList(items, className) {
    const list = document.createElement("ul");
    list.className = className;
    for (const item of items) {
      const li = document.createElement("li");
      li.textContent = item;
      list.append(li);
    }
    return list;
  }

  function preview(form) {
    const panel = document.getElementById("tenant-preview");
    const button = document.getElementById("tenant-preview-button");
    const result = document.getElementById("tenant-preview-result");
    if (!panel || !button || !result) {
      return;
    }
    // Above the Save buttons, as a plain button: Enter in a field keeps saving the form.
    const submitRow = [...form.querySelectorAll(".submit-row")].pop();
    if (submitRow && submitRow.compareDocumentPosition(panel) & Node.DOCUMENT_POSITION_FOLLOWING) {
      submitRow.before(panel);
    }
    button.type = "button";
    button.removeAttribute("formaction");
    let latest = 0;
    button.addEventListener("click", () => {
      const mine = ++latest;
      result.classList.add("busy");
      result.replaceChildren(document.createTextNode("Working it out…"));
      postForJson(panel.dataset.previewUrl, formValues(form))
        .then(({ ok, answer }) => {
          if (mine !== latest) {
            return;
          }
          result.classList.remove("busy");
          if (ok && typeof answer.html === "string") {
            result.innerHTML = answer.html; // rendered and escaped by Django's templates
          } else if (answer.errors) {
            const lines = Object.entries(answer.errors).map(
              ([field, messages]) => `${field}: ${messages.join(" ")}`,
            );
            result.replaceChildren(textList(lines, "errorlist"));
          } else {
            result.replaceChildren(textList([answer.error || "The preview failed."], "errorlist"));
          }
        })
        .catch(() => {
          if (mine === latest) {
            result.classList.remove("busy");
            result.replaceChildren(textList(["piadesk could not be reached."], "errorlist"));
          }
        });
    });
  }

  function connectionTest() {
    const testForm = document.getElementById("psa-connection-test");
    const result = document.getElementById("psa-connection-test-result");
    if (!testForm || !result) {
      return;
    }
    const button = testForm.querySelector("button");
    testForm.addEventListener("submit", (event) => {
      event.preventDefault();
      button.disabled = true;
      result.className = "psa-connection-test-result busy";
      result.textContent = "Testing…";
      postForJson(testForm.action, new FormData(testForm))
        .then(({ answer }) => {
          const ok = answer.ok === true;
          result.className = `psa-connection-test-result ${ok ? "ok" : "failed"}`;
          result.textContent = answer.message || answer.error || "The test failed.";
        })
        .catch(() => {
          result.className = "psa-connection-test-result failed";
          result.textContent = "piadesk could not be reached.";
        })
        .finally(() => {
          button.disabled = false;
        });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    const form = document.getElementById(FORM_ID);
    if (!form) {
      return;
    }
    conditionalFields(form);
    automationTable(form);
    preview(form);
    connectionTest();
  });
})();
