"""A small agent for tests: the same code served by our daemon and by Ruby nodes via shims."""

from __future__ import annotations

from mcollective_py.server.agent import Aborted, ActionRequest, Agent, InvalidData, Reply, action


class PyEcho(Agent):
    name = "pyecho"

    @action
    def echo(self, req: ActionRequest, reply: Reply) -> None:
        msg = str(req.data["msg"])
        if msg.startswith("fail:"):
            code = int(msg.split(":", 1)[1])
            reply["message"] = msg
            if code == 4:
                raise InvalidData(f"asked to fail with {code}")
            raise Aborted(f"asked to fail with {code}")
        reply["message"] = msg
        reply["length"] = len(msg)
        reply["caller"] = req.caller
        reply["words"] = msg.split()

    @action
    def sum(self, req: ActionRequest, reply: Reply) -> None:
        reply["total"] = int(req.data["a"]) + int(req.data.get("b", 0))
