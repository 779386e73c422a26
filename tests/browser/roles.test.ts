/**
 * Real browser journeys (Debian's Chromium driven by playwright-core): each role logs in through the login form,
 * sees only its own navigation, reaches its home page, and logs out. Skipped, with one clear line, where
 * /usr/bin/chromium is absent; .ci/run installs it, so CI runs these.
 */
import { type Page } from "playwright-core";
import { describe, expect, it } from "vitest";
import { baseUrl, DEMO_PASSWORD } from "../helpers/http";
import { uniqueEmail } from "../helpers/fixtures";
import { ARTIFACTS, chromiumOrSkipLine, useChromium } from "../helpers/browser";

const hasChromium = chromiumOrSkipLine();


describe.skipIf(!hasChromium)("browser journeys (Chromium)", () => {
  const browser = useChromium();

  async function login(email: string, password = DEMO_PASSWORD): Promise<Page> {
    const context = await browser().newContext({ locale: "fr-FR" });
    const page = await context.newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill(email);
    await page.getByLabel("Mot de passe").fill(password);
    await page.getByRole("button", { name: "Se connecter" }).click();
    await page.waitForURL((url) => !url.pathname.startsWith("/connexion"));
    return page;
  }

  const ROLES = [
    { email: "doctor@demo.nexus", home: "/patients", heading: "Mes patients", nav: ["Patients", "Nouveau patient"], hidden: ["Comptes"] },
    { email: "patient@demo.nexus", home: "/mon-dossier", heading: "Mon dossier", nav: ["Mon dossier"], hidden: ["Patients", "Comptes"] },
    { email: "admin@demo.nexus", home: "/admin/comptes", heading: "Comptes utilisateurs", nav: ["Comptes", "Patients"], hidden: ["Nouveau patient"] },
    { email: "researcher@demo.nexus", home: "/recherche", heading: "Espace recherche", nav: ["Recherche"], hidden: ["Patients", "Comptes"] },
  ];

  for (const role of ROLES) {
    it(`logs in as ${role.email}, shows only that role's navigation, and logs out`, async () => {
      const page = await login(role.email);
      await page.getByRole("heading", { level: 1, name: role.heading }).waitFor();
      expect(new URL(page.url()).pathname).toBe(role.home);
      const nav = page.getByRole("navigation", { name: "Navigation principale" });
      for (const label of role.nav) expect(await nav.getByRole("link", { name: label, exact: true }).count()).toBe(1);
      for (const label of role.hidden) expect(await nav.getByRole("link", { name: label, exact: true }).count()).toBe(0);
      await page.screenshot({ path: `${ARTIFACTS}/home-${role.email.split("@")[0]}.png`, fullPage: true });
      await page.getByRole("button", { name: "Se déconnecter" }).click();
      await page.waitForURL("**/connexion");
      // After logout, the home page sends back to the login form.
      await page.goto(`${baseUrl()}${role.home}`);
      expect(new URL(page.url()).pathname).toBe("/connexion");
      await page.context().close();
    });
  }

  it("shows the login error in French, and a 403 page when a role reaches another's page", async () => {
    const context = await browser().newContext();
    const page = await context.newPage();
    await page.goto(`${baseUrl()}/connexion`);
    await page.getByLabel("Adresse e-mail").fill("doctor@demo.nexus");
    await page.getByLabel("Mot de passe").fill("wrong password");
    await page.getByRole("button", { name: "Se connecter" }).click();
    await expect(page.getByRole("alert").textContent()).resolves.toContain("Adresse e-mail ou mot de passe incorrect.");
    await context.close();

    const patient = await login("patient@demo.nexus");
    const res = await patient.goto(`${baseUrl()}/admin/comptes`);
    expect(res?.status()).toBe(403);
    await expect(patient.getByRole("alert").textContent()).resolves.toContain("Action réservée aux administrateurs.");
    await patient.context().close();
  });

  it("lets an admin create an account and a doctor create a patient through the forms", async () => {
    const admin = await login("admin@demo.nexus");
    const email = uniqueEmail("ui-doctor");
    const form = admin.locator("form", { has: admin.getByRole("button", { name: "Créer un compte" }) });
    await form.getByLabel("Nom").fill("Dr Interface");
    await form.getByLabel("Adresse e-mail").fill(email);
    await form.getByLabel("Rôle").selectOption("doctor");
    await form.getByLabel(/Mot de passe initial/).fill("interface-password-1");
    await form.getByRole("button", { name: "Créer un compte" }).click();
    await admin.getByText("Compte créé.").waitFor();
    await admin.locator(`tr[data-email="${email}"]`).waitFor();
    await admin.screenshot({ path: `${ARTIFACTS}/admin-accounts.png`, fullPage: true });
    await admin.context().close();

    const doctor = await login(email, "interface-password-1");
    await doctor.getByRole("link", { name: "Nouveau patient" }).first().click();
    await doctor.getByLabel("Nom affiché").fill("Patiente Navigateur");
    await doctor.getByLabel(/Soins/).check();
    await doctor.getByRole("button", { name: "Créer le patient" }).click();
    await doctor.getByText("Patient créé.").waitFor();
    await doctor.getByRole("link", { name: "Ouvrir" }).click();
    await doctor.getByRole("heading", { name: "Patiente Navigateur" }).waitFor();
    expect(await doctor.locator('[data-purpose="care"]').textContent()).toContain("accordé");
    await doctor.screenshot({ path: `${ARTIFACTS}/patient-record.png`, fullPage: true });
    await doctor.context().close();
  });
});
