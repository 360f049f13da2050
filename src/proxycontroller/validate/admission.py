"""Which virtual hosts a listener holds, kept from pass to pass: first come, first served, decided again only
where a change can alter a decision.

The rule is `rules.admit_virtual_hosts`: in the listener's order, a virtual host is left out if validation
refused it, or if an earlier one that was admitted holds its name or one of its domains. So a decision
depends only on the virtual hosts that claim a name or domain in common with it, and on theirs in turn. When
some virtual hosts come and go, the ones connected to them that way (through the holder of a name or domain,
and through the ones left out for wanting it) are decided again, in order, among themselves; nothing else can
change. With distinct names and domains, as upstreams give them, that is the changed virtual hosts alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from operator import attrgetter

from proxycontroller.translate.plan import SourcedVirtualHost
from proxycontroller.validate.ordered import OrderedRuns, Place
from proxycontroller.validate.rules import CLEAN, Verdict, admission_problem, contested, domain_fold, left_out, one_line

_place = attrgetter("place")


class Candidate:
    """A virtual host a listener may hold: its place in the listener's order, what validation made of it on
    its own, and its canonical JSON (what is written of it if admitted). Compared by identity."""

    __slots__ = ("admitted", "data", "domains", "host", "name", "place", "problem", "verdict")

    def __init__(self, place: Place, host: SourcedVirtualHost, verdict: Verdict, data: bytes, body_limit: int) -> None:
        self.place = place
        self.host = host
        self.verdict = verdict
        self.data = data
        virtual_host = host.virtual_host
        self.name = virtual_host.name
        # Not None: left out whatever else the listener holds; then its name and domains claim nothing.
        self.problem = None if verdict is CLEAN else admission_problem(verdict, body_limit)
        domains = virtual_host.domains or ()
        keys = tuple(map(domain_fold(verdict), domains)) if self.problem is None else ()
        self.domains = domains if keys == domains else keys  # lower case already (nearly always): no new tuple
        self.admitted = False

    def describe(self) -> str:
        return self.host.describe()


class Admission:
    """One listener's decisions: the admitted candidates in order (`admitted.values`), and the warnings, in
    order, for those left out and for the routes left out of admitted ones (`warnings.values`)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.admitted: OrderedRuns[Candidate] = OrderedRuns()
        self.data: OrderedRuns[bytes] = OrderedRuns()  # the admitted candidates' JSON, for one join
        self.warnings: OrderedRuns[str] = OrderedRuns()
        # Since the listener last asked (`take_changes`): all decided anew, or the places admitted or no longer.
        self._rebuilt = False
        self._touched: list[Place] = []
        self._names: dict[str, Candidate] = {}  # held by an admitted candidate
        self._domains: dict[str, Candidate] = {}
        # Candidates left out for what an earlier one holds, by each name and domain they claim: they are the
        # ones a change of that name's or domain's holder may let in.
        self._wanting_name: dict[str, list[Candidate]] = {}
        self._wanting_domain: dict[str, list[Candidate]] = {}

    def rebuild(self, candidates: Iterable[Candidate]) -> None:
        """Every decision anew, for `candidates` in the listener's order."""
        self._names, self._domains, self._wanting_name, self._wanting_domain = {}, {}, {}, {}
        names, domains = self._names, self._domains
        admitted_places: list[Place] = []
        admitted: list[Candidate] = []
        data: list[bytes] = []
        warning_places: list[Place] = []
        warnings: list[str] = []
        for candidate in candidates:
            # What `_decide` does, inlined for the common case (a first pass decides on every virtual host):
            # nothing wrong with it, nothing it claims held.
            if candidate.problem is None and candidate.name not in names:
                claims = candidate.domains
                for domain in claims:
                    if domain in domains:
                        break
                else:
                    candidate.admitted = True
                    names[candidate.name] = candidate
                    for domain in claims:
                        domains[domain] = candidate
                    admitted_places.append(candidate.place)
                    admitted.append(candidate)
                    data.append(candidate.data)
                    if candidate.verdict.dropped:
                        said = [one_line(f"{self.where}: {line}") for line in candidate.verdict.dropped]
                        warning_places.extend([candidate.place] * len(said))
                        warnings.extend(said)
                    continue
            said = self._decide(candidate)
            warning_places.extend([candidate.place] * len(said))
            warnings.extend(said)
        self.admitted.reset(admitted_places, admitted)
        self.data.reset(list(admitted_places), data)
        self.warnings.reset(warning_places, warnings)
        self._rebuilt, self._touched = True, []

    def take_changes(self) -> tuple[bool, list[Place]]:
        """Whether every decision was taken anew, else the places whose admitted virtual host came or went,
        since the last call."""
        changes = (self._rebuilt, self._touched)
        self._rebuilt, self._touched = False, []
        return changes

    def update(self, removed: Iterable[Candidate], added: Iterable[Candidate]) -> None:
        """`removed` are gone, `added` are new (each at a place no other candidate holds): decide again what
        they could change."""
        names: list[str] = []
        domains: list[str] = []
        involved: set[Candidate] = set()
        for candidate in removed:
            if candidate.problem is None:
                names.append(candidate.name)
                domains.extend(candidate.domains)
            self._withdraw(candidate)
        fresh = []
        for candidate in added:
            if candidate.problem is None:
                involved.add(candidate)
                fresh.append(candidate)
                names.append(candidate.name)
                domains.extend(candidate.domains)
            else:
                self.warnings.put(candidate.place, self._decide(candidate))
        connected = self._connected(names, domains, involved)
        for candidate in connected:
            self._withdraw(candidate)
        for candidate in sorted([*fresh, *connected], key=_place):
            said = self._decide(candidate)
            if candidate.admitted:
                self.admitted.put(candidate.place, (candidate,))
                self.data.put(candidate.place, (candidate.data,))
                self._touched.append(candidate.place)
            if said:
                self.warnings.put(candidate.place, said)

    def _connected(self, names: list[str], domains: list[str], involved: set[Candidate]) -> list[Candidate]:
        """The candidates held that claim one of these names or domains, or one claimed by those, and so on;
        `involved` (the new ones) are not listed again."""
        seen_names, seen_domains = set(names), set(domains)
        found: list[Candidate] = []

        def reach(candidate: Candidate) -> None:
            if candidate in involved:
                return
            involved.add(candidate)
            found.append(candidate)
            if candidate.name not in seen_names:
                seen_names.add(candidate.name)
                names.append(candidate.name)
            for domain in candidate.domains:
                if domain not in seen_domains:
                    seen_domains.add(domain)
                    domains.append(domain)

        while names or domains:
            while names:
                name = names.pop()
                holder = self._names.get(name)
                if holder is not None:
                    reach(holder)
                for waiting in self._wanting_name.get(name, ()):
                    reach(waiting)
            while domains:
                domain = domains.pop()
                holder = self._domains.get(domain)
                if holder is not None:
                    reach(holder)
                for waiting in self._wanting_domain.get(domain, ()):
                    reach(waiting)
        return found

    def _decide(self, candidate: Candidate) -> list[str]:
        """Admit the candidate or leave it out, given what the candidates decided before hold; what to say."""
        problem = candidate.problem
        candidate.admitted = False
        if problem is None:
            problem = contested(candidate.host.virtual_host, candidate.domains, self._names, self._domains)
            if problem is None:
                candidate.admitted = True
                self._names[candidate.name] = candidate
                for domain in candidate.domains:
                    self._domains[domain] = candidate
                return [one_line(f"{self.where}: {line}") for line in candidate.verdict.dropped]
            self._wanting_name.setdefault(candidate.name, []).append(candidate)
            for domain in candidate.domains:
                self._wanting_domain.setdefault(domain, []).append(candidate)
        return [left_out(self.where, candidate, problem)]

    def _withdraw(self, candidate: Candidate) -> None:
        """Undo what deciding on the candidate did."""
        if candidate.admitted:
            candidate.admitted = False
            if self._names.get(candidate.name) is candidate:
                del self._names[candidate.name]
            for domain in candidate.domains:
                if self._domains.get(domain) is candidate:
                    del self._domains[domain]
            self.admitted.put(candidate.place, ())
            self.data.put(candidate.place, ())
            self._touched.append(candidate.place)
        elif candidate.problem is None:
            _unlist(self._wanting_name, candidate.name, candidate)
            for domain in candidate.domains:
                _unlist(self._wanting_domain, domain, candidate)
        self.warnings.put(candidate.place, ())


def _unlist(wanting: dict[str, list[Candidate]], claim: str, candidate: Candidate) -> None:
    waiting = wanting.get(claim)
    if waiting is not None and candidate in waiting:
        waiting.remove(candidate)
        if not waiting:
            del wanting[claim]
