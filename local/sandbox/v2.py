"""The sandbox's API v2 (contacts, events): authentication, each endpoint's handler."""

from __future__ import annotations

import copy
import uuid
from typing import Any

from local.sandbox.checks import (
    _basic_view,
    _check_event,
    _check_keys,
    _check_optional,
    _check_upsert_item,
    _is_email,
    _is_number,
    _new_contact,
    _required_str_list,
    _strings_in,
)
from local.sandbox.model import (
    _AUTH_KEYS,
    _CONTACT_TEXT_KEYS,
    _EVENT_ITEM_KEYS,
    _UPSERT_KEYS,
    MAX_BATCH_EVENTS,
    MAX_BATCH_UPSERT,
    MAX_LIST_IDS,
    V2Handler,
    _AccountState,
    _Journal,
    _json_reply,
    _log,
    _now_ms,
    _refuse,
    _Reply,
    _RequestRefusedError,
    _sha,
    _v2_failure,
)


class _V2Api:
    """API v2 handlers; mixed into Sandbox, whose state they read."""

    def _v2(self, handler: V2Handler, body: Any, is_json: bool) -> _Reply:
        try:
            if not is_json or not isinstance(body, dict):
                _refuse("Invalid request: a JSON object body expected")
            with self._lock:
                state = self._authenticate(body)
                # mode "request" poisons any request mentioning the e-mail; "item" is checked per method
                mentioned = _strings_in({k: v for k, v in body.items() if k != "owner"})
                if any(self._rejected.get(s.lower()) == "request" for s in mentioned):
                    _refuse("Invalid contact data")
                payload = handler(state, body)
        except _RequestRefusedError as exc:
            return _v2_failure(str(exc))
        return _json_reply({"success": True, "message": [], **payload})

    def _authenticate(self, body: dict[str, Any]) -> _AccountState:
        client_id, api_key, sha = body.get("clientId"), body.get("apiKey"), body.get("sha")
        state = self._states.get(client_id) if isinstance(client_id, str) else None
        if (
            state is None
            or not isinstance(api_key, str)
            or not api_key
            or not _is_number(body.get("requestTime"))
            or sha != _sha(api_key, state.account.client_id, state.account.api_secret)
        ):
            _refuse("Not authenticated")
        owner = body.get("owner")
        if not isinstance(owner, str) or owner.lower() not in state.owners:
            _refuse("Owner not found")
        return state

    def _v2_upsert(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_upsert_item(body, "", _AUTH_KEYS | _UPSERT_KEYS)
        self._refuse_if_rejected(body["contact"]["email"], body.get("newEmail"))
        return {"contactId": self._apply_upserts(state, [body])[0]}

    def _v2_batch_upsert(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"upsertDetails"}, "")
        details = body.get("upsertDetails")
        if not isinstance(details, list):
            _refuse("upsertDetails is required and must be a list")
        if not details:
            _refuse("upsertDetails must not be empty")
        if len(details) > MAX_BATCH_UPSERT:
            _refuse(f"Too many contacts in upsertDetails: {len(details)} > {MAX_BATCH_UPSERT}")
        for n, item in enumerate(details):
            _check_upsert_item(item, f"upsertDetails[{n}]", _UPSERT_KEYS)
        # SALESmanago does not report batchupsert failures per item, so neither do we: the client must
        # split the batch to find the culprit.
        for item in details:
            self._refuse_if_rejected(item["contact"]["email"], item.get("newEmail"))
        ids = self._apply_upserts(state, details)
        return {"contactIds": {item["contact"]["email"]: cid for item, cid in zip(details, ids, strict=True)}}

    def _apply_upserts(self, state: _AccountState, items: list[dict[str, Any]]) -> list[str]:
        journal, now = _Journal(state.contacts), _now_ms()
        try:
            return [self._apply_upsert(state, item, journal, now) for item in items]
        except _RequestRefusedError:
            journal.rollback()
            raise

    @staticmethod
    def _apply_upsert(state: _AccountState, item: dict[str, Any], journal: _Journal, now: int) -> str:
        given = item["contact"]
        key = given["email"].lower()
        new_email = item.get("newEmail")
        target = new_email.lower() if new_email else key
        journal.save(key)
        journal.save(target)
        stored = state.contacts.get(key)
        if target != key:
            taken = state.contacts.get(target)
            if taken is not None and not taken["deleted"]:
                _refuse(f"Contact with e-mail {new_email} already exists")
            if stored is None:
                stored = taken  # nothing to move: revive (or create) the contact at the new address
            else:
                del state.contacts[key]
        if stored is None:
            stored = _new_contact(given["email"], state.account.client_id, now)
        stored["email"] = new_email or given["email"]
        for name in (*_CONTACT_TEXT_KEYS, "state"):
            if given.get(name) is not None:
                stored[name] = given[name]
        stored["address"].update({k: v for k, v in (given.get("address") or {}).items() if v is not None})
        known_tags = {t.lower() for t in stored["tags"]}
        for tag in item.get("tags") or []:
            if tag.lower() not in known_tags:
                stored["tags"].append(tag)
                stored["tagCreatedOn"][tag] = now
                known_tags.add(tag.lower())
        removed = {t.lower() for t in item.get("removeTags") or []}
        stored["tags"] = [t for t in stored["tags"] if t.lower() not in removed]
        stored["properties"].update(item.get("properties") or {})
        for name in ("birthday", "province", "lang"):
            if item.get(name) is not None:
                stored[name] = item[name]
        if item.get("forceOptIn"):
            stored["optedOut"] = False
        if item.get("forceOptOut"):
            stored["optedOut"] = True
        if item.get("forcePhoneOptIn"):
            stored["optedOutPhone"] = False
        if item.get("forcePhoneOptOut"):
            stored["optedOutPhone"] = True
        stored["consentDetails"].extend(copy.deepcopy(item.get("consentDetails") or []))
        stored["deleted"] = False  # an upsert revives a soft-deleted contact
        stored["modifiedOn"] = now
        state.contacts[target] = stored
        return stored["id"]

    def _v2_delete(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email", "permanently"}, "")
        email = body.get("email")
        if not isinstance(email, str):
            _refuse("email is required")
        _check_optional(body, "permanently", "", bool, "a boolean")
        stored = state.contacts.get(email.lower())
        if stored is None:
            _refuse("Contact not found")
        if body.get("permanently"):
            del state.contacts[email.lower()]
        else:
            # L: without `permanently` the delete is assumed soft; reads then skip the contact.
            stored["deleted"] = True
            stored["modifiedOn"] = _now_ms()
        return {}

    @staticmethod
    def _live_by_email(state: _AccountState, emails: list[str]) -> list[dict[str, Any]]:
        found = (state.contacts.get(e.lower()) for e in dict.fromkeys(e.lower() for e in emails))
        return [c for c in found if c is not None and not c["deleted"]]

    @staticmethod
    def _live_by_id(state: _AccountState, ids: list[str]) -> list[dict[str, Any]]:
        by_id = {c["id"]: c for c in state.contacts.values() if not c["deleted"]}
        return [by_id[i] for i in dict.fromkeys(ids) if i in by_id]

    def _v2_basic(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        found = self._live_by_email(state, _required_str_list(body, "email"))
        return {"contacts": [_basic_view(c, "contactId") for c in found]}

    def _v2_basic_by_id(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"id"}, "")
        found = self._live_by_id(state, _required_str_list(body, "id"))
        return {"contacts": [_basic_view(c, "contactId") for c in found]}

    def _v2_list(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        found = self._live_by_email(state, _required_str_list(body, "email", MAX_LIST_IDS))
        return {"contacts": [self._full_view(c) for c in found]}

    def _v2_list_by_id(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"contactId"}, "")
        found = self._live_by_id(state, _required_str_list(body, "contactId", MAX_LIST_IDS))
        return {"contacts": [self._full_view(c) for c in found]}

    def _full_view(self, contact: dict[str, Any]) -> dict[str, Any]:
        return {
            **_basic_view(contact, "id"),
            # As a real contact/list reply carries tags (salesmanago-api.md §2): no `tags` key.
            "contactTags": [
                {
                    "tag": tag,
                    "tagName": tag,
                    "score": 1,
                    "createdOn": contact["tagCreatedOn"].get(tag, contact["createdOn"]),
                    "tagWithScore": f"{tag} (1)",
                }
                for tag in contact["tags"]
            ],
            "properties": [{"name": k, "value": v} for k, v in contact["properties"].items()],
            "contactExtEvents": [
                {"id": e["eventId"], "eventId": e["eventId"], **copy.deepcopy(e["contactEvent"])}
                for e in self._events
                if e["contactId"] == contact["id"]
            ],
        }

    def _v2_has_contact(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"email"}, "")
        email = body.get("email")
        if not isinstance(email, str):
            _refuse("email is required")
        found = self._live_by_email(state, [email])
        return {"contactId": found[0]["id"] if found else None, "result": bool(found)}

    def _v2_event(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | _EVENT_ITEM_KEYS | {"forceOptIn"}, "")
        return {"eventId": self._add_event(state, body, "")}

    def _v2_batch_events(self, state: _AccountState, body: dict[str, Any]) -> dict[str, Any]:
        _check_keys(body, _AUTH_KEYS | {"events"}, "")
        events = body.get("events")
        if not isinstance(events, list):
            _refuse("events is required and must be a list")
        if not 1 <= len(events) <= MAX_BATCH_EVENTS:
            _refuse(f"events must hold 1 to {MAX_BATCH_EVENTS} items, got {len(events)}")
        created, failed = 0, []
        for n, item in enumerate(events):
            try:
                if not isinstance(item, dict):
                    _refuse(f"Invalid type of events[{n}]: an object expected")
                _check_keys(item, _EVENT_ITEM_KEYS, f"events[{n}]")
                self._add_event(state, item, f"events[{n}].")
                created += 1
            except _RequestRefusedError as exc:
                _log.debug("batch event refused: %s", exc)
                failed.append(item.get("email", item.get("contactId")) if isinstance(item, dict) else None)
        return {"createdAmount": created, "failedAmount": len(failed), "failedContacts": failed}

    def _add_event(self, state: _AccountState, item: dict[str, Any], prefix: str) -> str:
        """Validate and store one event; refuses (and changes nothing) when anything is wrong."""
        _check_event(item.get("contactEvent"), f"{prefix}contactEvent")
        _check_optional(item, "forceOptIn", prefix.rstrip("."), bool, "a boolean")
        contact_id, email = item.get("contactId"), item.get("email")
        if contact_id is not None:
            if not isinstance(contact_id, str):
                _refuse(f"Invalid type of {prefix}contactId: a string expected")
            contact = state.contact_by_id(contact_id)
            if contact is None or contact["deleted"]:
                _refuse(f"Contact not found: {contact_id}")
            email = contact["email"]
        elif not _is_email(email):
            _refuse(f"Invalid e-mail address in {prefix}email: {email!r}")
        self._refuse_if_rejected(email)
        now = _now_ms()
        contact = state.contacts.get(email.lower())
        if contact is None:
            # L confidence: SALESmanago is assumed to create a contact for an event sent to an unknown
            # e-mail (and, by the same reasoning, to revive a soft-deleted one).
            contact = state.contacts[email.lower()] = _new_contact(email, state.account.client_id, now)
        elif contact["deleted"]:
            contact["deleted"], contact["modifiedOn"] = False, now
        if item.get("forceOptIn"):
            contact["optedOut"] = False
        event_id = str(uuid.uuid4())
        self._events.append(
            {
                "eventId": event_id,
                "client_id": state.account.client_id,
                "email": email,
                "contactId": contact["id"],
                "contactEvent": copy.deepcopy(item["contactEvent"]),
                "received_at": now,
            }
        )
        return event_id
