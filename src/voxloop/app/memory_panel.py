"""The Memory panel: what voxloop knows about the person, and their past conversations."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import gradio as gr

from voxloop.app.handlers import ChatMessages, ChatView, Update
from voxloop.live import LiveSessions
from voxloop.memory import Memory

SESSION_ID_BYTES = 16  # a new person's id, made on their first visit


@dataclass(frozen=True)
class PanelParts:
    """The panel's parts that show what memory holds."""

    facts: gr.Radio
    conversations: gr.Radio
    fact_text: gr.Textbox

    def outputs(self) -> list[Any]:
        """The parts, in the order `MemoryPanel.values` gives them."""
        return [self.facts, self.conversations, self.fact_text]


class MemoryPanel:
    """The panel's events: pick, edit, add and delete facts; forget all; reopen a conversation."""

    def __init__(
        self, memory: Memory, live: LiveSessions, chat_view: ChatView, parts: PanelParts
    ) -> None:
        self.memory = memory
        self.live = live
        self.chat_view = chat_view  # forgetting or reopening replaces the conversation shown
        self.parts = parts

    def view(self, session: str) -> Update:
        """The panel's lists, fresh from the store."""
        parts = self.parts
        current = self.memory.current(session)
        return {
            parts.facts: gr.Radio(choices=[f.text for f in self.memory.facts(session)], value=None),
            parts.conversations: gr.Radio(
                choices=[
                    (f"{c.title} ({c.turns} turns)", str(c.id))
                    for c in self.memory.conversations(session)
                ],
                value=str(current),
            ),
            parts.fact_text: "",
        }

    def values(self, session: str | None) -> tuple[Any, ...]:
        """The panel's lists as a tuple, for events whose outputs are `PanelParts.outputs`."""
        view = self.view(session or "")
        return tuple(view[part] for part in self.parts.outputs())

    def past_chat(self, session: str) -> ChatMessages:
        """The person's current conversation, as the chat shows it."""
        chat = []
        for user_text, reply in self.memory.exchanges(session):
            chat += [
                {"role": "user", "content": user_text},
                {"role": "assistant", "content": reply},
            ]
        return chat

    def open_page(self, session: str | None) -> tuple[Any, ...]:
        """On page load: the person's id (made on the first visit) and where they left off."""
        session = session or secrets.token_urlsafe(SESSION_ID_BYTES)
        return (session, self.past_chat(session), *self.values(session))

    @staticmethod
    def pick_fact(fact: str | None) -> str:
        """Put the picked fact in the text box, to edit it."""
        return fact or ""

    def save_fact(self, session: str | None, fact: str | None, text: str) -> tuple[Any, ...]:
        """Correct the picked fact, or add a new one."""
        if session:
            facts = {f.text: f.id for f in self.memory.facts(session)}
            if fact in facts:
                self.memory.edit_fact(session, facts[fact], text)
            else:
                self.memory.add_fact(session, text)
        return self.values(session)

    def delete_fact(self, session: str | None, fact: str | None) -> tuple[Any, ...]:
        """Forget the picked fact."""
        if session:
            for known in self.memory.facts(session):
                if known.text == fact:
                    self.memory.delete_fact(session, known.id)
        return self.values(session)

    def forget(self, client_id: str, session: str | None) -> Update:
        """Delete every conversation and fact of this person."""
        self.live.stop(client_id)
        self.memory.forget_everything(session or client_id)
        return self._fresh_page(session or client_id, "Everything is forgotten.")

    def reopen(self, client_id: str, session: str | None, conversation: str | None) -> Update:
        """Continue a past conversation: its turns come back into the chat and the context."""
        self.live.stop(client_id)
        if conversation:
            self.memory.open_conversation(session or client_id, int(conversation))
        page = self._fresh_page(session or client_id, "Conversation reopened.")
        return {**page, self.chat_view.chat: self.past_chat(session or client_id)}

    def _fresh_page(self, session: str, status: str) -> Update:
        return {**self.chat_view.fresh(status), **self.view(session)}
