#!/usr/bin/env python3
"""The desk in a real browser: headless Chromium, driven over WebDriver (selenium), in front of every Baton process
started for real by the supervisor.

    Tests/Browser/desk_test.py --bin .build/debug --out .build/test-output/browser

What it proves, in order (each step fails the run with what it saw):
  1. An agent signs in; a call driven through the desk's JSON API reaches the payment gate, and the brief is on the
     agent's screen within a second: the caller's name, the account and the card's last four, never the full card
     number anywhere in the page's HTML, and a caller turn holding <script> shown as text, never run.
  2. The metrics collector records brief_displayed only after the page rendered the brief.
  3. Accept makes the router's reservation accepted; Connected and Greeted complete a handoff that the supervisor's
     dashboard (/ops) then counts.
  4. Decline moves a second brief to a second signed-in agent at the other destination.
  5. Killing desk with SIGKILL (the supervisor restarts it) brings the brief back on the open page without a reload.
  6. A new revision highlights what changed; "Caller repeated" reaches the collector.
  7. Screenshots of the agent screen and of the dashboard are written to --out.
It cleans up every process and file it made (the screenshots stay).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

REPOSITORY = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
API_TOKEN = "browser-test-api-token-0123456789"
PROCESSES = ["context-assembler", "gate-evaluator", "router", "metrics-collector", "desk"]
CARD = "4111 1111 1111 1111"

# Two destinations open at every hour (no test depends on the time of day), both PCI-certified: desk-a in house
# (preferred), desk-b a partner.
DESTINATIONS = """
policy:
  target_live_human_s: 5
  max_live_human_s: 8
  prefer: in_house
  ring_and_greet_s: 3
  reservation_timeout_s: 60
  categories:
    payment:
      requires: [pci]
destinations:
"""
for _id, _kind in (("desk-a", "in_house"), ("desk-b", "partner")):
    DESTINATIONS += f"""  - id: {_id}
    kind: {_kind}
    skills: [billing, refunds, payments, pci, retention, contracts]
    certifications: [pci, legal_review]
    hours:
      time_zone: UTC
      open:
        - {{days: [mon, tue, wed, thu, fri, sat, sun], from: "00:00", to: "24:00"}}
    transfer: sip:{_id}@pbx.test
    agents: 10
    average_handle_s: 300
    cost_per_min: 1.0
    context: live
"""

AGENTS = {  # id: (name, destination, role, token)
    "ana": ("Ana Byrne", "desk-a", "agent", "ana-browser-token-1"),
    "ben": ("Ben Okafor", "desk-b", "agent", "ben-browser-token-1"),
    "sam": ("Sam Reyes", None, "supervisor", "sam-browser-token-1"),
}


class Failure(Exception):
    pass


def check(condition, what):
    if not condition:
        raise Failure(what)
    print(f"  ok: {what}", flush=True)


def eventually(probe, what, timeout=30.0, every=0.05):
    """Polls probe() until it returns something truthy; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            last = probe()
            if last:
                return last
        except Exception as error:  # noqa: BLE001 - a probe may fail while things start
            last = error
        time.sleep(every)
    raise Failure(f"{what} (waited {timeout:.0f} s; last saw {last!r})")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Baton:
    """The supervisor and the five processes, from --bin, in a scratch directory."""

    def __init__(self, binaries, port):
        self.binaries = binaries
        self.port = port
        self.base = f"http://127.0.0.1:{port}"
        self.directory = tempfile.mkdtemp(prefix="baton-browser-")
        self.environment = dict(
            os.environ,
            BATON_RUN_DIR=os.path.join(self.directory, "run"),
            BATON_DATA_DIR=os.path.join(self.directory, "data"),
            BATON_DESK_HTTP_PORT=str(port),
            BATON_DESK_API_TOKEN=API_TOKEN,
        )
        self.supervisor = None

    def write_configuration(self):
        config = os.path.join(self.directory, "config")
        os.makedirs(os.path.join(config, "workflows"))
        for workflow in ("billing-support", "bereavement"):
            shutil.copy(os.path.join(REPOSITORY, "config", "workflows", workflow + ".yaml"), os.path.join(config, "workflows"))
        with open(os.path.join(config, "destinations.yaml"), "w") as file:
            file.write(DESTINATIONS)
        lines = ["agents:"]
        for agent, (name, destination, role, token) in AGENTS.items():
            hashed = self.batonctl("hash-token", token).split("token_hash: ")[1].strip()
            lines += [f"  - id: {agent}", f"    name: {name}", f"    role: {role}", f"    token_hash: {hashed}"]
            if destination:
                lines.append(f"    destination: {destination}")
        with open(os.path.join(config, "agents.yaml"), "w") as file:
            file.write("\n".join(lines) + "\n")
        with open(os.path.join(self.directory, "Procfile"), "w") as file:
            for process in PROCESSES:
                file.write(f"{process}: {os.path.join(self.binaries, process)}\n")
        return config

    def start(self):
        config = self.write_configuration()
        log = open(os.path.join(self.directory, "supervisor.log"), "w")
        self.supervisor = subprocess.Popen(
            [os.path.join(self.binaries, "supervisor"), "--procfile", os.path.join(self.directory, "Procfile"), "--config-dir", config],
            cwd=self.directory,
            env=self.environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        eventually(lambda: self.all_ready(), "every process READY under the supervisor", timeout=90)
        eventually(lambda: self.http("GET", "/readyz")[0] == 200, "desk /readyz 200", timeout=60)

    def stop(self):
        if self.supervisor and self.supervisor.poll() is None:
            self.supervisor.send_signal(signal.SIGTERM)
            try:
                self.supervisor.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.supervisor.kill()
                self.supervisor.wait()
        shutil.rmtree(self.directory, ignore_errors=True)

    def log_tail(self):
        try:
            with open(os.path.join(self.directory, "supervisor.log")) as file:
                return "".join(file.readlines()[-40:])
        except OSError:
            return ""

    def batonctl(self, *arguments):
        done = subprocess.run(
            [os.path.join(self.binaries, "batonctl"), *arguments], env=self.environment, capture_output=True, text=True, timeout=60
        )
        if done.returncode != 0:
            raise Failure(f"batonctl {' '.join(arguments)}: {done.stdout}{done.stderr}")
        return done.stdout

    def call(self, process, method, request):
        return json.loads(self.batonctl("call", process, method, json.dumps(request)))

    def processes(self):
        return {p["name"]: p for p in self.call("supervisor", "Status", {}).get("processes", [])}

    def all_ready(self):
        processes = self.processes()
        return len(processes) == len(PROCESSES) and all(p.get("state") == "READY" for p in processes.values())

    def http(self, method, path, body=None):
        request = urllib.request.Request(self.base + path, method=method, data=None if body is None else json.dumps(body).encode())
        request.add_header("Authorization", "Bearer " + API_TOKEN)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, self.decode(response)
        except urllib.error.HTTPError as error:
            return error.code, self.decode(error)

    @staticmethod
    def decode(response):
        """The body as JSON, or as text when it is not (/readyz)."""
        body = response.read()
        try:
            return json.loads(body or b"{}")
        except ValueError:
            return body.decode("utf-8", "replace")

    def drive_to_payment_gate(self, call_id, name, account):
        """Opens a call and records what a voice AI would, up to the payment gate; returns the plan."""
        status, reply = self.http("POST", "/v1/calls", {"callId": call_id, "workflowId": "billing-support", "caller": {"phoneNumber": "+353871234567", "language": "en"}})
        check(status == 200, f"{call_id}: OpenCall over HTTP ({status} {reply})")
        events = [
            {"eventId": "e1", "callerTurn": {"text": f"Hi, this is {name} <script>window.__injected = 1</script>"}},
            {"eventId": "e2", "slotCaptured": {"name": "identity.name", "value": name, "confirmed": True}},
            {"eventId": "e3", "slotCaptured": {"name": "account.id", "value": account, "confirmed": True}},
            {"eventId": "e4", "identityVerified": {"method": "knowledge_questions"}},
            {"eventId": "e5", "callerTurn": {"text": f"My card is {CARD}"}},
            {"eventId": "e6", "slotCaptured": {"name": "card.last4", "value": "1111", "confirmed": True}},
            {"eventId": "e7", "aiSummary": {"text": "Wants to pay the open balance by card."}},
        ]
        for event in events:
            status, reply = self.http("POST", f"/v1/calls/{call_id}/events", event)
            if status != 200 or reply.get("outcome") != "OUTCOME_CONTINUE":
                raise Failure(f"{call_id}: {event['eventId']} answered {status} {reply}")
        status, reply = self.http("POST", f"/v1/calls/{call_id}/events", {"eventId": "e8", "intentDetected": {"intent": "make_payment"}})
        check(status == 200 and reply.get("outcome") == "OUTCOME_HANDOFF", f"{call_id}: make_payment fires the payment gate")
        return reply["plan"]

    def timeline(self, handoff):
        reply = self.call("metrics-collector", "GetHandoff", {"handoffId": handoff})
        return [event.get("kind") for event in reply.get("timeline", [])], reply


def browser(width=1280, height=800):
    options = webdriver.ChromeOptions()
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", f"--window-size={width},{height}"):
        options.add_argument(argument)
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    # The page itself at 1280x800, whatever the window's frame takes.
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    return driver


def text(driver, element_id):
    return driver.find_element(By.ID, element_id).text


def sign_in(driver, baton, agent):
    driver.get(baton.base + "/")
    eventually(lambda: driver.find_element(By.ID, "agent-id").is_displayed(), f"{agent}: the sign-in form")
    driver.find_element(By.ID, "agent-id").send_keys(agent)
    driver.find_element(By.ID, "agent-token").send_keys(AGENTS[agent][3])
    driver.find_element(By.ID, "sign-in-button").click()
    eventually(lambda: text(driver, "connection") == "Connected", f"{agent}: signed in and connected")
    cookie = driver.get_cookie("baton_session")
    check(cookie and cookie.get("httpOnly") and cookie.get("sameSite") == "Strict", f"{agent}: the session cookie is HttpOnly and SameSite=Strict")


def brief_on_screen(driver, handoff):
    article = driver.find_element(By.ID, "brief")
    return article.is_displayed() and article.get_attribute("data-handoff") == handoff


def run(binaries, out):
    os.makedirs(out, exist_ok=True)
    baton = Baton(binaries, free_port())
    drivers = []
    try:
        print("browser test: starting Baton", flush=True)
        baton.start()
        ana, ben, sam = browser(), browser(), browser()
        drivers += [ana, ben, sam]

        print("1. the brief pops up on the agent's screen", flush=True)
        sign_in(ana, baton, "ana")
        check(text(ana, "queue-empty") == "No caller is waiting for you.", "ana: an empty queue before any call")
        gate_at_ms = int(time.time() * 1000)
        plan = baton.drive_to_payment_gate("browser-1", "Aoife Byrne", "AC-1234-5678")
        fired = time.monotonic()
        handoff = plan["handoffId"]
        check(plan.get("destinationId") == "desk-a", f"the payment handoff goes in house, to desk-a ({plan.get('destinationId')})")
        eventually(lambda: brief_on_screen(ana, handoff), "ana: the brief on screen within a second", timeout=1.0, every=0.01)
        check(True, f"the brief was on screen {time.monotonic() - fired:.3f} s after the gate's reply")
        lead = text(ana, "b-lead")
        check("Aoife Byrne" in lead and "AC-1234-5678" in lead and "1111" in lead, "the lead facts in large type: name, account, card's last four")
        html = ana.page_source
        check(CARD not in html and CARD.replace(" ", "") not in html, "the full card number is nowhere in the page's HTML")
        turns = text(ana, "b-turns")
        check("<script>window.__injected = 1</script>" in turns, "a caller turn with <script> is shown as text")
        check(ana.execute_script("return window.__injected === undefined && document.querySelectorAll('#brief script').length === 0"), "and it never ran")
        check("Verified by knowledge" in text(ana, "b-verified"), "verified, and how")
        check(text(ana, "b-whisper") != "", "the whisper text")
        check("since the gate fired" in text(ana, "b-clock") and "predicted live human" in text(ana, "b-clock"), "the clock beside the prediction")

        print("2. brief_displayed only after the page rendered it", flush=True)
        rendered_at = int(ana.find_element(By.ID, "brief").get_attribute("data-rendered-at"))
        kinds, reply = eventually(lambda: (lambda t: t if "EVENT_KIND_BRIEF_DISPLAYED" in t[0] else None)(baton.timeline(handoff)), "the collector records brief_displayed")
        displayed = [e for e in reply["timeline"] if e["kind"] == "EVENT_KIND_BRIEF_DISPLAYED"][0]
        check(int(displayed["atUnixMs"]) >= rendered_at, f"brief_displayed ({displayed['atUnixMs']}) is not before the page rendered it ({rendered_at})")
        check(rendered_at >= gate_at_ms - 5000, "and the render came after the gate fired")

        print("3. accept, connected, greeted; the dashboard counts it", flush=True)
        ana.find_element(By.TAG_NAME, "body").send_keys("a")
        eventually(lambda: text(ana, "b-state").lower() == "accepted", "ana: the brief's state is Accepted (the A shortcut)")

        def reservation_accepted():
            for destination in baton.call("router", "ListDestinations", {}).get("destinations", []):
                for reservation in destination.get("reservations", []):
                    if reservation.get("handoffId") == handoff:
                        return reservation.get("state") == "STATE_ACCEPTED" or reservation.get("state")
            return None

        check(eventually(reservation_accepted, "the router has the reservation") == True, "the router's reservation is accepted")  # noqa: E712
        ana.find_element(By.ID, "act-connected").click()
        eventually(lambda: text(ana, "b-state").lower() == "connected", "ana: Connected")
        ana.find_element(By.ID, "act-greeted").click()
        eventually(lambda: text(ana, "b-state").lower() == "greeted", "ana: Greeted")
        classification = eventually(lambda: (lambda r: r.get("classification") if r.get("classification") != "CLASSIFICATION_IN_PROGRESS" else None)(baton.timeline(handoff)[1]), "the collector classifies the handoff")
        check(classification == "CLASSIFICATION_HANDOFF", f"the collector counts a handoff, not a failover ({classification})")
        ana.save_screenshot(os.path.join(out, "agent-screen-greeted.png"))
        sam.get(baton.base + "/")
        eventually(lambda: sam.find_element(By.ID, "agent-id").is_displayed(), "sam: the sign-in form")
        sam.find_element(By.ID, "agent-id").send_keys("sam")
        sam.find_element(By.ID, "agent-token").send_keys(AGENTS["sam"][3])
        sam.find_element(By.ID, "sign-in-button").click()
        eventually(lambda: sam.find_element(By.ID, "ops-link").is_displayed(), "sam: signed in, with the link to the dashboard")
        sam.get(baton.base + "/ops")

        def handoffs_tile():
            for tile in sam.find_elements(By.CSS_SELECTOR, "#tiles .tile"):
                if tile.find_element(By.CLASS_NAME, "label").text == "Handoffs":
                    return int(tile.find_element(By.CLASS_NAME, "value").text)
            return None

        check(eventually(lambda: handoffs_tile() and handoffs_tile() >= 1, "the dashboard's Handoffs tile", timeout=20), "the dashboard counts the handoff")
        check(len(sam.find_elements(By.CSS_SELECTOR, "#histogram svg rect")) > 2, "the dashboard draws the histogram in SVG")
        check("desk-a" in text(sam, "destinations") and "context-assembler" in text(sam, "processes"), "the dashboard shows the router's destinations and the supervisor's processes")
        status = sam.execute_script("return fetch('/api/ops').then(r => r.status)")
        check(status == 200, "a supervisor's /api/ops is 200")
        status = ana.execute_script("return fetch('/api/ops').then(r => r.status)")
        check(status == 403, "an agent's /api/ops is 403")

        ana.find_element(By.TAG_NAME, "body").send_keys("h")
        eventually(lambda: ana.find_element(By.ID, "hand-back-notes").is_displayed(), "ana: the hand-back form (the H shortcut)")
        ana.find_element(By.ID, "hand-back-notes").send_keys("Payment taken.")
        ana.find_element(By.CSS_SELECTOR, "#form-hand-back button[type=submit]").click()
        eventually(lambda: "handed back" in text(ana, "notice") and not brief_on_screen(ana, handoff), "ana: handed back to the AI, the brief cleared")

        print("4. decline moves the brief to the other destination's agent", flush=True)
        sign_in(ben, baton, "ben")
        second = baton.drive_to_payment_gate("browser-2", "Niamh Walsh", "AC-9999-0001")["handoffId"]
        eventually(lambda: brief_on_screen(ana, second), "ana: the second brief on screen")
        ana.find_element(By.TAG_NAME, "body").send_keys("d")
        eventually(lambda: ana.find_element(By.ID, "decline-reason").is_displayed(), "ana: the decline form (the D shortcut)")
        ana.find_element(By.ID, "decline-reason").send_keys("going on break")
        ana.find_element(By.CSS_SELECTOR, "#form-decline button[type=submit]").click()
        eventually(lambda: brief_on_screen(ben, second), "ben: the declined brief arrives at desk-b")
        check("Niamh Walsh" in text(ben, "b-lead"), "ben sees the caller's name")
        eventually(lambda: "withdrawn" in text(ana, "notice") and not brief_on_screen(ana, second), "ana: the brief is withdrawn, with the reason")
        check("another destination" in text(ana, "notice"), "the reason is in words")

        print("5. kill -9 desk: the brief comes back without a reload", flush=True)
        ben.execute_script("window.__sameDocument = 42")
        before = baton.processes()["desk"]["pid"]
        os.kill(int(before), signal.SIGKILL)
        eventually(lambda: text(ben, "connection") == "Reconnecting…", "ben: the page says it is reconnecting", timeout=15, every=0.01)
        eventually(lambda: baton.processes()["desk"].get("state") == "READY" and baton.processes()["desk"]["pid"] != before, "the supervisor restarts desk", timeout=60)
        eventually(lambda: text(ben, "connection") == "Connected" and brief_on_screen(ben, second), "ben: connected again, the brief back", timeout=30)
        check(ben.execute_script("return window.__sameDocument") == 42, "the page was not reloaded")

        print("6. a new revision highlights what changed; caller repeated", flush=True)
        status, reply = baton.http("POST", "/v1/calls/browser-2/events", {"eventId": "e9", "proposedNextStep": {"text": "Take 120 EUR on the card ending 1111"}})
        check(status == 200, f"a later fact is recorded ({status})")
        eventually(lambda: ben.find_element(By.ID, "brief").get_attribute("data-revision") != "1", "ben: the brief's next revision")
        next_step = ben.find_element(By.ID, "b-next")
        check("Take 120 EUR" in next_step.text and "changed" in next_step.get_attribute("class"), "the new proposed next step is highlighted")
        ben.find_element(By.TAG_NAME, "body").send_keys("r")
        eventually(lambda: ben.find_element(By.ID, "repeat-slot").is_displayed(), "ben: the repeat form (the R shortcut)")
        ben.find_element(By.CSS_SELECTOR, "#repeat-slot option[value='account.id']").click()
        ben.find_element(By.CSS_SELECTOR, "#form-repeat button[type=submit]").click()
        eventually(lambda: "Caller repeated: done" in text(ben, "notice"), "ben: the repeat is recorded")
        repeated = eventually(lambda: [e for e in baton.timeline(second)[1].get("timeline", []) if e["kind"] == "EVENT_KIND_CALLER_REPEATED"], "the collector has caller_repeated")
        check(repeated[0].get("repeatedSlot") == "account.id", "the collector counts the repeat of account.id")
        ben.save_screenshot(os.path.join(out, "agent-screen.png"))
        sam.refresh()
        eventually(lambda: handoffs_tile() is not None, "the dashboard after the restart")
        # The whole dashboard in one picture: the viewport as tall as the page.
        height = sam.execute_script("return document.documentElement.scrollHeight")
        sam.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {"width": 1280, "height": int(height), "deviceScaleFactor": 1, "mobile": False})
        time.sleep(0.5)  # let the resized page paint before the picture
        sam.save_screenshot(os.path.join(out, "dashboard.png"))
        print(f"browser test: passed; screenshots in {out}: agent-screen.png, agent-screen-greeted.png, dashboard.png", flush=True)
        return 0
    except Failure as failure:
        print(f"browser test: FAILED: {failure}", flush=True)
        for index, driver in enumerate(drivers):
            try:
                driver.save_screenshot(os.path.join(out, f"failure-{index}.png"))
            except Exception:  # noqa: BLE001
                pass
        print(baton.log_tail(), flush=True)
        return 1
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except Exception:  # noqa: BLE001
                pass
        baton.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bin", default=os.path.join(REPOSITORY, ".build", "debug"), help="where the built executables are")
    parser.add_argument("--out", default=os.path.join(REPOSITORY, ".build", "test-output", "browser"), help="where the screenshots go")
    arguments = parser.parse_args()
    sys.exit(run(os.path.abspath(arguments.bin), os.path.abspath(arguments.out)))
