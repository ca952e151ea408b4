"""The agent framework's promises to actions: complete inputs and one settings reader."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mcollective_py import config
from mcollective_py.ddl import AgentDDL, load_ddl_file
from mcollective_py.server.agent import (
    Aborted,
    ActionRequest,
    Agent,
    AgentContext,
    AgentSettings,
    Reply,
    action,
)
from mcollective_py.server.facts import NodeState

DDL = """metadata :name => "shapes", :description => "t", :author => "t", :license => "t",
         :version => "1", :url => "https://example.invalid", :timeout => 5

action "draw", :description => "draw" do
    input :shape, :prompt => "S", :description => "S", :type => :string, :validation => '^\\w+$',
          :optional => false, :maxlength => 20
    input :sides, :prompt => "N", :description => "N", :type => :integer, :optional => true,
          :default => 4
    input :tags, :prompt => "T", :description => "T", :type => :array, :optional => true,
          :default => ["plain"]
    input :colour, :prompt => "C", :description => "C", :type => :string, :validation => '.',
          :optional => true, :maxlength => 20
    output :seen, :description => "what the action got", :display_as => "Seen"
end
"""


class Shapes(Agent):
    name = "shapes"
    defaults = {"pen": "pencil", "wait": "2.5"}

    @action
    def draw(self, req: ActionRequest, reply: Reply) -> None:
        req.data["tags"].append("touched")  # must not leak into the DDL's default
        reply["seen"] = dict(req.data)


@pytest.fixture
def shapes(tmp_path: Path) -> Shapes:
    p = tmp_path / "shapes.ddl"
    p.write_text(DDL)
    ddl = load_ddl_file(p)
    assert isinstance(ddl, AgentDDL)
    return Shapes(ddl)


def _draw(agent: Agent, **data: Any) -> dict[str, Any]:
    r = agent.handle(ActionRequest(agent="shapes", action="draw", data=data))
    assert r.statuscode == 0, r.statusmsg
    return dict(r.data["seen"])


def test_actions_get_every_input_with_ddl_defaults(shapes: Shapes) -> None:
    assert _draw(shapes, shape="box") == {
        "shape": "box",
        "sides": 4,
        "tags": ["plain", "touched"],
        "colour": None,
    }


def test_given_inputs_win_and_defaults_are_fresh_copies(shapes: Shapes) -> None:
    assert _draw(shapes, shape="tri", sides=3, colour="red")["sides"] == 3
    assert _draw(shapes, shape="box")["tags"] == ["plain", "touched"]  # not touched twice


SETTINGS = {
    "plugin.shapes.pen": "ink",
    "plugin.shapes.web.pen": "marker",
    "plugin.shapes.db.pen": "",  # empty: unset
    "plugin.shapes.wait": "",
    "plugin.other.pen": "crayon",
}


@pytest.mark.parametrize(
    ("key", "service", "default", "want"),
    [
        ("pen", "web", None, "marker"),  # service-level first
        ("pen", "db", None, "ink"),  # an empty service value falls through
        ("pen", None, None, "ink"),  # agent-level
        ("wait", None, None, "2.5"),  # empty agent value: the class default
        ("size", None, "big", "big"),  # nothing anywhere: the call's default
        ("size", None, None, None),
    ],
)
def test_settings_precedence(key: str, service: str | None, default: str | None, want: Any) -> None:
    s = AgentSettings("shapes", SETTINGS, Shapes.defaults)
    assert s.value(key, service, default) == want
    assert s.text(key, service) == (s.value(key, service) or "")


def test_settings_mapping_holds_only_what_is_configured() -> None:
    s = AgentSettings("shapes", SETTINGS, Shapes.defaults)
    assert dict(s) == {"pen": "ink", "web.pen": "marker", "db.pen": "", "wait": ""}
    assert s.configured("wait") is None and s.configured("pen", "web") == "marker"


def test_seconds_reads_positive_durations_or_aborts_naming_the_key() -> None:
    s = AgentSettings("shapes", {"plugin.shapes.t": "x", "plugin.shapes.z": "0"}, {"d": "2.5"})
    assert s.seconds("d") == 2.5 and s.seconds("missing", default=7.0) == 7.0
    with pytest.raises(Aborted, match=r"^plugin.shapes.t = 'x' is not a positive number"):
        s.seconds("t", default=1.0)
    with pytest.raises(Aborted, match=r"^plugin.shapes.z = '0' is not a positive number"):
        s.seconds("z")
    with pytest.raises(Aborted, match=r"^plugin.shapes.missing = None is not a positive"):
        s.seconds("missing")


def test_agent_context_from_config(tmp_path: Path) -> None:
    (tmp_path / "facts.yaml").write_text("role: db\n")
    (tmp_path / "classes.txt").write_text("roles::db\n")
    cfgfile = tmp_path / "server.cfg"
    cfgfile.write_text(
        f"identity = node7\nplugin.shapes.pen = ink\nplugin.yaml = {tmp_path / 'facts.yaml'}\n"
        f"classesfile = {tmp_path / 'classes.txt'}\n"
    )
    cfg = config.load(str(cfgfile), role="server", env={}, system_dirs=())
    state = NodeState([str(tmp_path / "facts.yaml")], str(tmp_path / "classes.txt"))
    ctx = AgentContext.from_config(cfg, state)
    assert ctx.identity == "node7" and ctx.settings["plugin.shapes.pen"] == "ink"
    assert ctx.facts() == {"role": "db"} and ctx.classes() == ["roles::db"]
    assert AgentContext.from_config(cfg, state, identity="first").identity == "first"
