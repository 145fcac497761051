"""The emulated modem's state and its AT command handlers (spec §8.3), apart from any I/O.

Set (``=``), read (``?``) and test (``=?``) forms are separate cases; a command the
emulator does not know answers ``ERROR``, like a real modem, so clients never wander into
vendor paths on a fake "OK to everything".
"""

from __future__ import annotations

import dataclasses
import re
import time

#: Memories and how many SMS each holds.
MEMORIES = ("SM", "ME", "SR")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclasses.dataclass
class Quirks:
    """Behaviours and faults a test or a demo can switch on."""

    #: Echo is on at power-up (V.250); ``ATE0`` turns it off.
    echo: bool = True
    #: The SIM wants this PIN before anything SMS works; empty: no PIN.
    pin: str = ""
    #: Seconds after power-up during which CREG says "searching".
    registration_delay_s: float = 0.0
    #: Only LTE (CEREG) registration, CREG says "not registered" (SMS over SGs/IMS).
    lte_only: bool = False
    #: Answer AT+CEREG at all (2G/3G modules say ERROR).
    lte: bool = False
    #: A USB stick: AT+CBC answers ERROR.
    no_battery: bool = False
    #: AT+CNMI with ds=2 is refused, so the client must fall back to ds=1 (+CDS inline).
    no_ds2: bool = False
    #: URCs raised while a command runs come out between its information lines and OK.
    urc_mid_reply: bool = False
    #: A Huawei stick: a ``^RSSI`` URC inside every reply.
    rssi_flood: bool = False
    #: ``+CMS ERROR`` codes for upcoming sends, in order (one per AT+CMGS).
    send_errors: list[int] = dataclasses.field(default_factory=list)
    #: The next N SMS commands answer ``+CMS ERROR: 314`` (SIM busy).
    busy_commands: int = 0
    #: Replies go out a few bytes per write.
    split_writes: bool = False
    #: Incoming long SMS use a 16-bit concatenation reference.
    concat_16bit: bool = False
    #: Parts of an incoming long SMS are stored last part first.
    reverse_parts: bool = False
    #: The next N ``+CMTI`` are never sent (the SMS is still stored).
    drop_cmti: int = 0
    #: Where status reports are stored with ds=2 ("SR" on some modems).
    report_memory: str = "SM"
    #: The service centre on the SIM; empty gives ``+CMS ERROR: 330`` on every send.
    smsc: str = "+254700000000"
    capacity: int = 30

    @classmethod
    def parse(cls, text: str) -> tuple[str, object]:
        """Read ``name=value`` (or a bare ``name``: true) as the quirk's own type.

        Lists are comma-separated (``send_errors=500,331``). ValueError names the problem.
        """
        name, sep, raw = text.partition("=")
        name = name.strip().replace("-", "_")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        if name not in fields:
            raise ValueError(f"unknown quirk {name!r} (known: {', '.join(sorted(fields))})")
        default = getattr(cls(), name)
        raw = raw.strip()
        if isinstance(default, bool):
            if not sep:
                return name, True
            if raw.lower() in _TRUE | _FALSE:
                return name, raw.lower() in _TRUE
            raise ValueError(f"{name}: {raw!r} is not true or false")
        if not sep:
            raise ValueError(f"{name} needs a value: {name}=<value>")
        try:
            if isinstance(default, list):
                return name, [int(x) for x in raw.split(",") if x.strip()]
            if isinstance(default, int):
                return name, int(raw)
            if isinstance(default, float):
                return name, float(raw)
        except ValueError:
            raise ValueError(f"{name}: {raw!r} is not a number") from None
        return name, raw

    def update(self, changes: dict[str, object]) -> None:
        """Change quirks by name; ValueError for an unknown one."""
        names = {f.name for f in dataclasses.fields(self)}
        for key, value in changes.items():
            if key not in names:
                raise ValueError(f"unknown quirk {key!r}")
            setattr(self, key, value)


@dataclasses.dataclass
class Slot:
    """One stored SMS or report: PDU mode stat (0 unread, 1 read) and hex with SMSC."""

    stat: int
    pdu: str

    @property
    def length(self) -> int:
        """Return the TPDU length, without the SMSC field (what +CMGL and +CMGR announce)."""
        return len(self.pdu) // 2 - 1 - int(self.pdu[:2], 16)


class ModemState:
    """Settings, SIM, radio and memories of one emulated modem."""

    def __init__(self, quirks: Quirks) -> None:
        self.quirks = quirks
        self.memories: dict[str, dict[int, Slot]] = {m: {} for m in MEMORIES}
        self.mr = 0
        self.sends = 0
        #: The network's side of registration (``smssync sim phone N --no-service``).
        self.in_coverage = True
        self.power_up()

    def power_up(self) -> None:
        """Reset what a reboot resets; the memories (the SIM) survive."""
        self.echo = self.quirks.echo
        self.cmee = 0
        self.cmgf = 0
        self.cnmi = (0, 0, 0, 0, 0)
        self.csms = 0
        self.cpms = ["SM", "SM", "SM"]
        self.sim = "SIM PIN" if self.quirks.pin else "READY"
        self.pin_attempts = 3
        self.cfun = 1
        self.rssi = 20
        self.rsrp = 50
        self.battery = (0, 80, 3900)
        self.powered_at = time.monotonic()
        self.csca = self.quirks.smsc

    # -- helpers -------------------------------------------------------------------------------

    def registered(self) -> bool:
        """Tell whether the radio is on and registration has finished."""
        waited = time.monotonic() - self.powered_at >= self.quirks.registration_delay_s
        return self.cfun == 1 and self.sim == "READY" and waited and self.in_coverage

    def creg_stat(self, lte: bool) -> int:
        """Return CREG or CEREG stat: 1 home, 2 searching, 0 not registered."""
        if self.quirks.lte_only and not lte:
            return 0
        return 1 if self.registered() else 2

    def cme(self, code: int) -> str:
        """Format a mobile-equipment error as ``AT+CMEE`` asks."""
        return "ERROR" if self.cmee == 0 else f"+CME ERROR: {code}"

    def next_mr(self) -> int:
        """Return the next message reference, wrapping at 256."""
        self.mr = (self.mr + 1) % 256
        return self.mr

    def store(self, memory: str, pdu: str) -> int | None:
        """Put a PDU in the first free index (from 1); None when the memory is full."""
        slots = self.memories[memory]
        if len(slots) >= self.quirks.capacity:
            return None
        index = next(i for i in range(1, self.quirks.capacity + 1) if i not in slots)
        slots[index] = Slot(0, pdu)
        return index

    def free(self, memory: str) -> int:
        """Return how many SMS still fit."""
        return self.quirks.capacity - len(self.memories[memory])

    def cpms_counts(self) -> str:
        """Return ``used,total`` for each of the three CPMS memories."""
        return ",".join(f"{len(self.memories[m])},{self.quirks.capacity}" for m in self.cpms)

    # -- commands without I/O ------------------------------------------------------------------

    def simple(self, command: str) -> list[str] | None:
        """Answer a command that needs no network: reply lines ending with the final code.

        None means the command is not one of these (the emulator handles sends itself).
        """
        upper = command.upper()
        if upper in ("AT", ""):
            return ["OK"]
        if upper == "ATZ":
            self.power_up()
            return ["OK"]
        if match := re.fullmatch(r"ATE([01]?)", upper):
            self.echo = match.group(1) == "1"
            return ["OK"]
        identity = {
            "ATI": "smssync modem emulator",
            "AT+CGMI": "smssync",
            "AT+CGMM": "SIM-EMU",
            "AT+CGMR": "1.0",
            "AT+CGSN": "490154203237518",
        }
        if upper in identity:
            return [identity[upper], "OK"]
        if not upper.startswith("AT+"):
            return ["ERROR"]
        name, form, args = _split(command[3:])
        handler = getattr(self, f"_{name.lower()}", None)
        if handler is None:
            return ["ERROR"]
        reply: list[str] = handler(form, args)
        return reply

    def sms_blocked(self) -> list[str] | None:
        """Return the error an SMS command gets now (SIM locked, SIM busy), or None."""
        if self.sim != "READY":
            return ["+CMS ERROR: 311" if self.sim == "SIM PIN" else "+CMS ERROR: 316"]
        if self.quirks.busy_commands > 0:
            self.quirks.busy_commands -= 1
            return ["+CMS ERROR: 314"]
        return None

    def _cmee(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return [f"+CMEE: {self.cmee}", "OK"]
        if form == "=" and args and args[0] in ("0", "1", "2"):
            self.cmee = int(args[0])
            return ["OK"]
        return [self.cme(4)] if form != "=?" else ["+CMEE: (0-2)", "OK"]

    def _cpin(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return [f"+CPIN: {self.sim}", "OK"]
        if form != "=" or not args:
            return [self.cme(4)]
        if self.sim != "SIM PIN":
            return [self.cme(3)]
        if args[0] == self.quirks.pin:
            self.sim = "READY"
            self.powered_at = time.monotonic()
            return ["OK"]
        self.pin_attempts -= 1
        if self.pin_attempts <= 0:
            self.sim = "SIM PUK"
        return [self.cme(16)]

    def _registration(self, name: str, form: str, lte: bool) -> list[str]:
        if form == "?":
            return [f"+{name}: 0,{self.creg_stat(lte)}", "OK"]
        if form == "=?":
            return [f"+{name}: (0-2)", "OK"]
        return ["OK"]

    def _creg(self, form: str, args: list[str]) -> list[str]:
        return self._registration("CREG", form, lte=False)

    def _cereg(self, form: str, args: list[str]) -> list[str]:
        if not (self.quirks.lte or self.quirks.lte_only):
            return ["ERROR"]
        return self._registration("CEREG", form, lte=True)

    def _cfun(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return [f"+CFUN: {self.cfun}", "OK"]
        if form == "=" and args and args[0] in ("0", "1", "4"):
            self.cfun = int(args[0])
            return ["OK"]
        return ["+CFUN: (0,1,4)", "OK"] if form == "=?" else [self.cme(4)]

    def _csq(self, form: str, args: list[str]) -> list[str]:
        return (
            ["+CSQ: (0-31,99),(0-7,99)", "OK"] if form == "=?" else [f"+CSQ: {self.rssi},99", "OK"]
        )

    def _cesq(self, form: str, args: list[str]) -> list[str]:
        rsrp = self.rsrp if self.quirks.lte or self.quirks.lte_only else 255
        return [f"+CESQ: 99,99,255,255,255,{rsrp}", "OK"]

    def _cbc(self, form: str, args: list[str]) -> list[str]:
        if self.quirks.no_battery:
            return ["ERROR"]
        return ["+CBC: {},{},{}".format(*self.battery), "OK"]

    def _csca(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            toa = 145 if self.csca.startswith("+") else 129
            return [f'+CSCA: "{self.csca}",{toa}', "OK"]
        if form == "=" and args:
            self.csca = args[0]
            return ["OK"]
        return ["OK"] if form == "=?" else ["+CMS ERROR: 304"]

    def _cscs(self, form: str, args: list[str]) -> list[str]:
        return ['+CSCS: "GSM"', "OK"] if form == "?" else ["OK"]

    def _cmgf(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return [f"+CMGF: {self.cmgf}", "OK"]
        if form == "=?":
            return ["+CMGF: (0,1)", "OK"]
        if blocked := self.sms_blocked():
            return blocked
        if args and args[0] in ("0", "1"):
            self.cmgf = int(args[0])
            return ["OK"]
        return ["+CMS ERROR: 304"]

    def _csms(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return [f"+CSMS: {self.csms},1,1,1", "OK"]
        if form == "=" and args and args[0] in ("0", "1"):
            self.csms = int(args[0])
            return ["+CSMS: 1,1,1", "OK"]
        return ["+CSMS: (0,1)", "OK"]

    def _csmp(self, form: str, args: list[str]) -> list[str]:
        return ["+CSMP: 17,167,0,0", "OK"] if form == "?" else ["OK"]

    def _cpms(self, form: str, args: list[str]) -> list[str]:
        if form == "=?":
            return ['+CPMS: ("SM","ME","SR"),("SM","ME"),("SM","ME")', "OK"]
        if form == "?":
            parts = [f'"{m}",{len(self.memories[m])},{self.quirks.capacity}' for m in self.cpms]
            return ["+CPMS: " + ",".join(parts), "OK"]
        if blocked := self.sms_blocked():
            return blocked
        if not args or any(m not in MEMORIES for m in args[:3]):
            return ["+CMS ERROR: 302"]
        for i, memory in enumerate(args[:3]):
            self.cpms[i] = memory
        return [f"+CPMS: {self.cpms_counts()}", "OK"]

    def _cnmi(self, form: str, args: list[str]) -> list[str]:
        if form == "?":
            return ["+CNMI: " + ",".join(map(str, self.cnmi)), "OK"]
        if form == "=?":
            ds = "(0,1)" if self.quirks.no_ds2 else "(0-2)"
            return [f"+CNMI: (0-2),(0-3),(0,2),{ds},(0,1)", "OK"]
        values = [int(a) if a.isdigit() else 0 for a in args] + [0] * 5
        if (values[3] == 2 and self.quirks.no_ds2) or values[1] > 3:
            return ["+CMS ERROR: 303"]
        self.cnmi = (values[0], values[1], values[2], values[3], values[4])
        return ["OK"]

    def _cnma(self, form: str, args: list[str]) -> list[str]:
        return ["OK"]

    def _cmgl(self, form: str, args: list[str]) -> list[str]:
        if form == "=?":
            return ["+CMGL: (0-4)", "OK"]
        if blocked := self.sms_blocked():
            return blocked
        wanted = int(args[0]) if args and args[0].isdigit() else 4
        lines = []
        for index, slot in sorted(self.memories[self.cpms[0]].items()):
            if wanted in (4, slot.stat):
                lines += [f"+CMGL: {index},{slot.stat},,{slot.length}", slot.pdu]
                slot.stat = max(slot.stat, 1)
        return [*lines, "OK"]

    def _cmgr(self, form: str, args: list[str]) -> list[str]:
        if blocked := self.sms_blocked():
            return blocked
        slot = self.memories[self.cpms[0]].get(int(args[0]) if args and args[0].isdigit() else -1)
        if slot is None:
            return ["+CMS ERROR: 321"]
        stat, slot.stat = slot.stat, max(slot.stat, 1)
        return [f"+CMGR: {stat},,{slot.length}", slot.pdu, "OK"]

    def _cmgd(self, form: str, args: list[str]) -> list[str]:
        if form == "=?":
            return ["+CMGD: (1-30),(0-4)", "OK"]
        if blocked := self.sms_blocked():
            return blocked
        slots = self.memories[self.cpms[0]]
        if len(args) > 1 and args[1] == "4":
            slots.clear()
            return ["OK"]
        index = int(args[0]) if args and args[0].isdigit() else -1
        if index not in slots:
            return ["+CMS ERROR: 321"]
        del slots[index]
        return ["OK"]


def _split(rest: str) -> tuple[str, str, list[str]]:
    """Split ``CMGS=23`` into ("CMGS", "=", ["23"]); forms "", "=", "?", "=?"."""
    match = re.fullmatch(r"([A-Za-z]+)(=\?|\?|=)?(.*)", rest)
    if not match:
        return "", "", []
    name, form, tail = match.group(1), match.group(2) or "", match.group(3)
    args = [a.strip().strip('"') for a in tail.split(",")] if tail else []
    return name, form, args
