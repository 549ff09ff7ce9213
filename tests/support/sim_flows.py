"""Rules that let the OpenAI stand-in play three parts of a simulation, deterministically.

* :func:`bot_llm`: the LLM of tests/interop/sim_bot.py (Pipecat's ``OpenAILLMService``),
  playing the flow its system prompt names (``FLOW: restaurant``) with the flow's tools, as
  the bots behind Pipecat's published simulation files do (restaurant reservation, food
  ordering, insurance quote).
* :func:`persona`: the simulated caller of each published persona (Jamie, Sam, Casey, Alex,
  Riley, Morgan), answering the bot's last turn and hanging up with ``end_call``.
* :func:`judge`: a judge that says yes (with a reason), whatever tool or format it is asked in.

:func:`persona_and_judge` is one handler for a stand-in serving both the persona and judge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from .openai_stub import StubReply, Tool, last_user_text

__all__ = ["bot_llm", "judge", "persona", "persona_and_judge"]

_NUMBERS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_TIME = re.compile(r"\b(\d{1,2})(?::00)?\s*(pm|p\.m\.)", re.IGNORECASE)


def _number(text: str) -> int | None:
    for word in re.findall(r"[a-z]+|\d+", text.lower()):
        if word.isdigit():
            return int(word)
        if word in _NUMBERS:
            return _NUMBERS[word]
    return None


def _time(text: str) -> str | None:
    match = _TIME.search(text)
    return f"{int(match.group(1))} PM" if match else None


def _say(text: str) -> StubReply:
    return StubReply(text=text)


def _call(name: str, text: str | None = None, **arguments: Any) -> StubReply:
    return StubReply(text=text, tool_calls=(Tool(name, arguments),))


class _Context:
    """What the bot's LLM request says so far: results by tool, the user's words."""

    def __init__(self, request: dict[str, Any]) -> None:
        messages = request.get("messages", [])
        system = messages[0]["content"] if messages else ""
        match = re.search(r"FLOW: (\w+)", str(system))
        self.flow = match.group(1) if match else ""
        self.results: dict[str, Any] = {}
        names: dict[str, str] = {}
        self.last_tool: str | None = None
        for message in messages:
            for call in message.get("tool_calls") or []:
                names[call["id"]] = call["function"]["name"]
            if message.get("role") == "tool":
                name = names.get(message.get("tool_call_id", ""), "?")
                try:
                    self.results[name] = json.loads(message.get("content") or "null")
                except ValueError:
                    self.results[name] = message.get("content")
        last = messages[-1] if messages else {}
        if last.get("role") == "tool":
            self.last_tool = names.get(last.get("tool_call_id", ""), "?")
        self.users = [m.get("content") or "" for m in messages if m.get("role") == "user"]
        self.user = last_user_text(request).lower() if last.get("role") == "user" else ""
        self.heard = " ".join(self.users).lower()


def _restaurant(c: _Context) -> StubReply:
    if c.last_tool == "collect_party_size":
        size = c.results["collect_party_size"]["party_size"]
        return _say(f"Great, a table for {size}. What time would you like to come in tonight?")
    if c.last_tool == "check_availability":
        result = c.results["check_availability"]
        if result["available"]:
            return _call(
                "end_conversation",
                f"Your table for {result['party_size']} at {result['time']} tonight is "
                "confirmed. Thank you for calling, goodbye!",
            )
        return _say(
            f"I'm sorry, {result['time']} is not available tonight. I can offer 5 PM, 6 PM "
            "or 9 PM. Would one of those work for you?"
        )
    if not c.users:
        return _say(
            "Hello, thank you for calling. I can book a table for tonight. How many people "
            "will be in your party?"
        )
    party = c.results.get("collect_party_size")
    if party is None:
        size = _number(c.user)
        if size is not None:
            return _call("collect_party_size", size=size)
        return _say("Of course. How many people will be in your party?")
    time = _time(c.user)
    if time is not None:
        return _call("check_availability", time=time, party_size=party["party_size"])
    if any(w in c.user for w in ("thank", "goodbye", "no ")):
        return _say("I'm sorry we could not find a time that works. Have a good evening!")
    return _say("What time would you like to come in tonight?")


def _ordering(c: _Context, menu: str) -> StubReply:
    choose, select = f"choose_{menu}", f"select_{menu}_order"
    if c.last_tool == choose:
        if menu == "pizza":
            size = next((s for s in ("large", "medium", "small") if s in c.heard), "large")
            kind = next((k for k in ("pepperoni", "margherita") if k in c.heard), "cheese")
            return _call(select, size=size, type=kind)
        count = _number(c.heard) or 1
        return _call(select, count=count, roll="California")
    if c.last_tool == select:
        order = c.results[select]
        if menu == "pizza":
            return _say(
                f"That's one {order['size']} {order['type']} pizza for {order['price']} "
                "dollars. Would you like anything else?"
            )
        return _say(
            f"That's {order['count']} {order['roll']} rolls for {order['price']} dollars. "
            "Shall I place the order?"
        )
    if c.last_tool == "get_delivery_estimate":
        return _say("Delivery takes about 30 minutes. Shall I place your order?")
    if c.last_tool == "complete_order":
        return _say("Your order is placed. Thank you for ordering, goodbye!")
    if not c.users:
        return _say("Welcome! Would you like to order pizza or sushi tonight?")
    if choose not in c.results and menu in c.user.replace("california", "sushi"):
        return _call(choose)
    if "deliver" in c.user or "how long" in c.user:
        return _call("get_delivery_estimate")
    if any(w in c.user for w in ("yes", "confirm", "right", "correct")):
        return _call("complete_order")
    return _say(f"What {menu} would you like?")


def _insurance(c: _Context) -> StubReply:
    tool = c.last_tool
    if tool == "collect_age":
        return _say("Thank you. Are you married or single?")
    if tool == "collect_marital_status":
        return _call("calculate_quote")
    if tool in ("calculate_quote", "update_coverage"):
        quote = c.results[tool]
        coverage = f"{quote.get('coverage', 0):,}"
        deductible = f"{quote.get('deductible', 0):,}"
        text = (
            f"Your quote is {quote['monthly_premium']} dollars a month for {coverage} dollars "
            f"of coverage with a {deductible} dollar deductible. "
        )
        more = "Would you like to change the coverage?" if tool == "calculate_quote" else ""
        return _say(text + (more or "Is there anything else?"))
    if tool == "end_quote":
        return _say("Thank you for calling, goodbye!")
    if not c.users:
        return _say("Hello, I can get you an insurance quote. How old are you?")
    if "collect_age" not in c.results and _number(c.user):
        return _call("collect_age", age=_number(c.user))
    status = next((s for s in ("married", "single") if s in c.user), None)
    if "collect_marital_status" not in c.results and status is not None:
        return _call("collect_marital_status", status=status)
    if "500,000" in c.user or "500000" in c.user:
        return _call("update_coverage", coverage=500000, deductible=2000)
    if "all" in c.user or "thank" in c.user:
        return _call("end_quote")
    return _say("Could you tell me a little more?")


_FLOWS: dict[str, Callable[[_Context], StubReply]] = {
    "restaurant": _restaurant,
    "pizza": lambda c: _ordering(c, "pizza"),
    "sushi": lambda c: _ordering(c, "sushi"),
    "insurance": _insurance,
}


def bot_llm(request: dict[str, Any]) -> StubReply:
    """The bot's LLM: the next step of the flow its system prompt names."""
    context = _Context(request)
    return _FLOWS[context.flow](context)


def _hang_up(text: str | None = None, success: bool = True) -> StubReply:
    reason = "got what I called for" if success else "the assistant could not help"
    arguments = {"success": success, "reason": reason}
    return StubReply(text=text, tool_calls=(Tool("end_call", arguments),))


def _jamie(bot: str) -> StubReply:
    if "confirmed" in bot:
        return _hang_up("Wonderful, thank you. Goodbye!")
    if "how many" in bot:
        return _say("Two people, please.")
    if "what time" in bot:
        return _say("6 PM, please.")
    return _say("I'd like to book a table for tonight.")


def _sam(bot: str) -> StubReply:
    if "confirmed" in bot:
        return _hang_up("Perfect, thanks. Bye!")
    if "not available" in bot:
        return _say("6 PM works for us.")
    if "how many" in bot:
        return _say("Four of us.")
    if "what time" in bot:
        return _say("7 PM would be great.")
    return _say("I'd like a table for tonight.")


def _casey(bot: str) -> StubReply:
    if "8 pm is not available" in bot:
        return _hang_up("Thank you anyway, goodbye.", success=False)
    if "7 pm is not available" in bot:
        return _say("What about 8 PM?")
    if "how many" in bot:
        return _say("Two.")
    if "what time" in bot:
        return _say("7 PM, please.")
    return _say("I'd like a table for tonight.")


def _alex(bot: str) -> StubReply:
    if "order is placed" in bot:
        return _hang_up()
    if "minutes" in bot:
        return _say("Yes, please confirm the order.")
    if "large pepperoni" in bot:
        return _say("How long will delivery take?")
    return _say("I'd like a large pepperoni pizza, please.")


def _riley(bot: str) -> StubReply:
    if "order is placed" in bot:
        return _hang_up()
    if "california rolls" in bot:
        return _say("Yes, that's right.")
    return _say("I'd like three California rolls, please.")


def _morgan(bot: str) -> StubReply:
    if "goodbye" in bot:
        return _hang_up()
    if "change the coverage" in bot:
        return _say("Please raise the coverage to 500,000 dollars with a 2,000 dollar deductible.")
    if "anything else" in bot:
        return _say("No, that's all I need, thanks.")
    if "married" in bot:
        return _say("Married.")
    if "how old" in bot:
        return _say("I'm 30.")
    return _say("I'd like an insurance quote.")


_PERSONAS: dict[str, Callable[[str], StubReply]] = {
    "jamie": _jamie,
    "sam": _sam,
    "casey": _casey,
    "alex": _alex,
    "riley": _riley,
    "morgan": _morgan,
}


def persona(request: dict[str, Any]) -> StubReply:
    """The caller a published persona describes (by its name), answering the bot's last turn."""
    system = str(request["messages"][0]["content"])
    match = re.search(r"Who you are: (\w+)", system)
    who = match.group(1).lower() if match else ""
    return _PERSONAS.get(who, lambda bot: _hang_up())(last_user_text(request).lower())


def judge(request: dict[str, Any]) -> StubReply:
    """Yes, with a reason: as the tool the request offers, else as JSON text."""
    tools = request.get("tools") or []
    verdict = {"verdict": "yes", "reason": "the conversation shows it"}
    if tools:
        return _call(tools[0]["function"]["name"], **verdict)
    return _say(json.dumps(verdict))


def persona_and_judge(request: dict[str, Any]) -> StubReply:
    """One stand-in for both: requests offering ``end_call`` are the persona's."""
    names = [t.get("function", {}).get("name") for t in request.get("tools") or []]
    return persona(request) if "end_call" in names else judge(request)
