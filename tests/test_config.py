from __future__ import annotations

from pathlib import Path

import pytest

from mcollective_py import config
from mcollective_py.errors import ConfigError

LAB_CFG = """\
# managed by mco-lab ruby-fleet
main_collective = mcollective
collectives = mcollective,dev
libdir = /usr/share/mcollective/plugins:/tmp/mco-lab/plugins
securityprovider = psk
plugin.psk = mco-lab-psk
connector = rabbitmq
plugin.rabbitmq.vhost = /mcollective
plugin.rabbitmq.pool.size = 1
plugin.rabbitmq.pool.1.host = 127.0.0.1
plugin.rabbitmq.pool.1.port = 61613
plugin.rabbitmq.pool.1.user = mcollective
plugin.rabbitmq.pool.1.password = marionette
identity = mco-lab-client
logger_type = console
loglevel = warn
"""


def write(p: Path, text: str) -> str:
    p.write_text(text)
    return str(p)


def load(tmp_path: Path, text: str = LAB_CFG, **kw):  # type: ignore[no-untyped-def]
    f = write(tmp_path / "client.cfg", text)
    kw.setdefault("env", {})
    kw.setdefault("home", str(tmp_path / "home"))
    kw.setdefault("system_dirs", ())
    return config.load(f, **kw)


def test_reads_a_ruby_client_cfg_unchanged(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.identity == "mco-lab-client"
    assert cfg.collectives == ("mcollective", "dev")
    assert cfg.main_collective == "mcollective"
    assert cfg.connector == "rabbitmq"
    assert cfg.securityprovider == "psk"
    assert cfg.plugin("rabbitmq")["pool.1.host"] == "127.0.0.1"
    assert cfg.libdir == ("/usr/share/mcollective/plugins", "/tmp/mco-lab/plugins")
    assert cfg.ttl == 60 and cfg.direct_addressing and cfg.direct_addressing_threshold == 10


def test_origin_names_file_and_line(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.origin("identity") == f"{tmp_path}/client.cfg:14"
    assert cfg.origin("ttl") == "default"


def test_layers_merge_in_documented_order(tmp_path: Path) -> None:
    sysdir = tmp_path / "etc"
    sysdir.mkdir()
    write(sysdir / "client.cfg", "ttl = 30\ncollectives = sys\nplugin.psk = from-etc\n")
    home = tmp_path / "home"
    home.mkdir()
    write(home / ".mcollective", "ttl = 40\n")
    f = write(tmp_path / "explicit.cfg", "identity = me\n")
    cfg = config.load(
        f,
        env={"MCOLLECTIVE_PSK": "from-env"},
        home=str(home),
        system_dirs=(str(sysdir),),
        overrides={"ttl": ("90", "--ttl")},
    )
    assert cfg.get("collectives") == "sys"  # from /etc layer, not overridden
    assert cfg.ttl == 90 and cfg.origin("ttl") == "--ttl"
    assert cfg.get("plugin.psk") == "from-env" and cfg.origin("plugin.psk") == "env MCOLLECTIVE_PSK"
    assert cfg.files == (str(sysdir / "client.cfg"), str(home / ".mcollective"), f)


def test_mcollective_config_env_is_used_when_no_c_flag(tmp_path: Path) -> None:
    f = write(tmp_path / "x.cfg", "identity = from-env-file\n")
    cfg = config.load(None, env={"MCOLLECTIVE_CONFIG": f}, home=str(tmp_path), system_dirs=())
    assert cfg.identity == "from-env-file"


def test_missing_explicit_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError, match=r"^config file /nonexistent.cfg \(from -c/--config\) does not exist"
    ):
        config.load("/nonexistent.cfg", env={}, home=str(tmp_path), system_dirs=())


def test_unknown_key_is_refused_with_suggestion(tmp_path: Path) -> None:
    with pytest.raises(
        ConfigError,
        match=r"unknown config option 'colectives' at .*client.cfg:1; did you mean 'collectives'\?",
    ):
        load(tmp_path, "colectives = x\n")


def test_plugin_d_files(tmp_path: Path) -> None:
    (tmp_path / "plugin.d").mkdir()
    write(tmp_path / "plugin.d" / "rabbitmq.cfg", "vhost = /other\n# comment\n")
    cfg = load(tmp_path)
    assert cfg.plugin("rabbitmq")["vhost"] == "/other"


def test_stomp_user_env_overrides_every_pool_entry(tmp_path: Path) -> None:
    text = (
        LAB_CFG.replace("pool.size = 1", "pool.size = 2")
        + "plugin.rabbitmq.pool.2.host = 127.0.0.2\n"
    )
    cfg = load(tmp_path, text, env={"STOMP_USER": "u", "STOMP_PASSWORD": "p"})
    assert cfg.get("plugin.rabbitmq.pool.1.user") == "u"
    assert cfg.get("plugin.rabbitmq.pool.2.password") == "p"


@pytest.mark.parametrize(
    ("text", "prop", "match"),
    [
        (
            "ttl = soon\n",
            "ttl",
            r"config option 'ttl' has invalid value 'soon' \(from .*:1\); expected a whole number",
        ),
        (
            "direct_addressing = maybe\n",
            "direct_addressing",
            r"'maybe'.*expected one of 1/yes/true",
        ),
        ("identity = bad name!\n", "identity", r"'bad name!'"),
    ],
)
def test_bad_values_name_key_value_and_origin(
    tmp_path: Path, text: str, prop: str, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        cfg = load(tmp_path, text)
        getattr(cfg, prop)


def test_secrets_are_redacted(tmp_path: Path) -> None:
    cfg = load(tmp_path)
    assert cfg.redacted("plugin.psk") == "********"
    assert cfg.redacted("plugin.rabbitmq.pool.1.password") == "********"
    assert cfg.redacted("identity") == "mco-lab-client"


def test_str_to_bool_forms(tmp_path: Path) -> None:
    for v, want in [
        ("1", True),
        ("YES", True),
        ("t", True),
        ("0", False),
        ("n", False),
        ("False", False),
    ]:
        cfg = load(tmp_path, f"color = {v}\n")
        assert cfg.color is want
