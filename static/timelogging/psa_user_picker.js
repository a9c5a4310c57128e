"use strict";
// PSA user picker: a search box above a "PSA user" text input (marked by the admin with
// data-psa-users-url, or data-psa-users-url-template + data-psa-connection-field) that lists
// the PSA's active users from piadesk's JSON endpoint and, on a choice, fills the user's ref
// and name inputs. Progressive enhancement: the text inputs stay as they are and editable, so
// staff can still type an id by hand (no JavaScript, or the PSA is down). Self-contained on
// purpose: the settings page's scripts are to be reworked (issue 6).
(() => {
  const DEBOUNCE_MS = 250;
  const PLACEHOLDER = "__connection__";

  function searchUrl(refInput) {
    if (refInput.dataset.psaUsersUrl) {
      return refInput.dataset.psaUsersUrl;
    }
    const select = document.getElementById(refInput.dataset.psaConnectionField || "");
    if (!select || !select.value) {
      return null;
    }
    return refInput.dataset.psaUsersUrlTemplate.replace(PLACEHOLDER, encodeURIComponent(select.value));
  }

  function describe(user) {
    const email = user.email ? ` — ${user.email}` : "";
    return `${user.name || user.ref}${email} (${user.ref})`;
  }

  function enhance(refInput) {
    const nameInput = document.getElementById(refInput.dataset.psaUserNameField);
    const row = document.createElement("div");
    row.className = "form-row psa-user-picker";
    const label = document.createElement("label");
    const search = document.createElement("input");
    search.id = `${refInput.id}_search`;
    label.htmlFor = search.id;
    label.textContent = "Find a PSA user:";
    search.type = "search";
    search.className = "vTextField";
    search.autocomplete = "off";
    search.placeholder = "Name or e-mail";
    search.setAttribute("role", "combobox");
    search.setAttribute("aria-expanded", "false");
    // No name attribute: the search box is never submitted with the form.
    const list = document.createElement("ul");
    list.id = `${refInput.id}_results`;
    list.setAttribute("role", "listbox");
    list.style.cssText = "list-style:none;margin:4px 0 0;padding:0;max-height:16em;overflow:auto";
    search.setAttribute("aria-controls", list.id);
    const status = document.createElement("div");
    status.className = "help";
    status.setAttribute("aria-live", "polite");
    status.textContent = "Searches the PSA's active users; choosing one fills the fields below.";
    // The admin's own row layout: label and input side by side, help text below.
    const line = document.createElement("div");
    line.className = "flex-container";
    line.append(label, search);
    const box = document.createElement("div");
    box.append(line, status, list);
    row.append(box);
    const fieldRow = refInput.closest(".form-row") || refInput.parentElement;
    fieldRow.parentNode.insertBefore(row, fieldRow);

    let users = [];
    let active = -1;
    let timer = null;
    let latest = 0;

    function show(text) {
      status.textContent = text;
    }

    function render(found) {
      users = found;
      active = -1;
      list.replaceChildren(
        ...found.map((user, index) => {
          const item = document.createElement("li");
          item.setAttribute("role", "option");
          item.style.cssText = "padding:3px 6px;cursor:pointer";
          item.textContent = describe(user); // textContent: PSA names are not trusted HTML
          item.addEventListener("mousedown", (event) => {
            event.preventDefault(); // keep focus in the search box
            choose(index);
          });
          return item;
        }),
      );
      search.setAttribute("aria-expanded", found.length ? "true" : "false");
    }

    function highlight(index) {
      active = index;
      [...list.children].forEach((item, i) => {
        item.setAttribute("aria-selected", i === index ? "true" : "false");
        item.style.background = i === index ? "var(--selected-row, #ffc)" : "";
      });
      if (list.children[index]) {
        list.children[index].scrollIntoView({ block: "nearest" });
      }
    }

    function choose(index) {
      const user = users[index];
      if (!user) {
        return;
      }
      // A search still pending (typed just before the choice) must not reopen the list.
      clearTimeout(timer);
      latest += 1;
      refInput.value = user.ref;
      if (nameInput) {
        nameInput.value = user.name;
      }
      for (const input of [refInput, nameInput]) {
        input?.dispatchEvent(new Event("change", { bubbles: true }));
      }
      render([]);
      show(`Chosen: ${describe(user)}. Save to keep it.`);
    }

    function query() {
      const url = searchUrl(refInput);
      if (!url) {
        render([]);
        show("Choose the PSA connection first.");
        return;
      }
      const mine = ++latest;
      show("Searching…");
      const target = `${url}?q=${encodeURIComponent(search.value.trim())}`;
      fetch(target, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then((response) =>
          response
            .json()
            .catch(() => ({ error: `piadesk answered HTTP ${response.status}.` }))
            .then((body) => ({ ok: response.ok, body })),
        )
        .then(({ ok, body }) => {
          if (mine !== latest) {
            return; // an older answer arriving late
          }
          if (!ok || !Array.isArray(body)) {
            render([]);
            show(`${body.error || "The PSA's users could not be listed."} You can type the id below.`);
            return;
          }
          render(body);
          show(body.length ? "" : "No active PSA user matches.");
        })
        .catch(() => {
          if (mine === latest) {
            show("piadesk could not be reached. You can type the id below.");
          }
        });
    }

    search.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(query, DEBOUNCE_MS);
    });
    search.addEventListener("focus", () => {
      if (!users.length) {
        query();
      }
    });
    search.addEventListener("keydown", (event) => {
      if (event.key === "ArrowDown" || event.key === "ArrowUp") {
        event.preventDefault();
        const step = event.key === "ArrowDown" ? 1 : -1;
        if (users.length) {
          highlight((active + step + users.length) % users.length);
        }
      } else if (event.key === "Enter") {
        event.preventDefault(); // choosing a user must not submit the settings form
        choose(active >= 0 ? active : 0);
      } else if (event.key === "Escape") {
        render([]);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document
      .querySelectorAll("input[data-psa-users-url], input[data-psa-users-url-template]")
      .forEach(enhance);
  });
})();
