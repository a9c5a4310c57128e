"use strict";
// PSA connection add page: each PSA has its own fields, so choosing another PSA reloads the
// page with ?vendor=<choice>, keeping what was typed in the tenant and name fields.
document.addEventListener("DOMContentLoaded", () => {
  const vendor = document.querySelector("select#id_vendor");
  if (!vendor) {
    return; // change page: the vendor is fixed
  }
  vendor.addEventListener("change", () => {
    const url = new URL(window.location.href);
    url.searchParams.set("vendor", vendor.value);
    for (const name of ["tenant", "name"]) {
      const field = document.getElementById(`id_${name}`);
      if (field && field.value) {
        url.searchParams.set(name, field.value);
      }
    }
    window.location.assign(url.toString());
  });
});
