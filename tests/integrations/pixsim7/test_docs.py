"""docs/integrations/pixsim7.md, the operator's walk-through: linked from the README; the files its steps copy and
apply exist; the variables it lists are the ones the plugin reads; its example request is one the plugin accepts
(its npc_params are valid job params); its example catalog section is a catalog the worker accepts, which resolves a
job as the document says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from models.catalog import load_catalog
from models.resolution import resolve
from npc_video_client.contract import NpcResponseParams

ROOT = Path(__file__).resolve().parents[3]
DOC = ROOT / "docs" / "integrations" / "pixsim7.md"


def test_the_readme_links_the_integration_doc():
    assert "(docs/integrations/pixsim7.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_example_catalog_section_loads_and_resolves_as_documented(tmp_path):
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    (section,) = [block for block in blocks if "[styles.anime]" in block]
    loras = tmp_path / "loras"
    loras.mkdir()
    for name in ("anime_style", "blush", "wave_hand"):
        (loras / f"{name}.safetensors").write_bytes(name.encode())  # read for their digest only
    (tmp_path / "npcs").mkdir()
    (tmp_path / "npcs" / "tavern_keeper.png").write_bytes(b"png")
    catalog_path = tmp_path / "catalog.toml"
    head = f'[defaults]\nmodel = "wan-480p"\nloras_root = "{loras}"\n\n'
    model = '[models.wan-480p]\nfamily = "wan-i2v"\npath = "/models/Wan2.1-I2V-14B-480P-Diffusers"\n\n'
    catalog_path.write_text(head + model + section, encoding="utf-8")
    catalog = load_catalog(catalog_path)
    assert set(catalog.styles) == {"anime", "semi-realistic", "realistic"}
    params = NpcResponseParams(
        npc_id="tavern-keeper", npc_name="Tavern keeper", expression="smiling", emotion="happy",
        animation="wave", intensity=0.5, art_style="anime", loras=["blush"],
    )  # fmt: skip
    request = resolve(params, catalog, (512, 512))
    assert request.model == "wan-480p"
    assert [(lora.name, lora.weight) for lora in request.loras] == [("anime-style", 0.7), ("blush", 0.8)]
    documented = re.search(r"the prompt ends with `([^`]+)`", DOC.read_text(encoding="utf-8"))
    assert documented is not None
    assert request.prompt.endswith(documented.group(1)), request.prompt


def test_the_steps_name_files_that_exist():
    text = DOC.read_text(encoding="utf-8")
    (copied,) = re.findall(r"^cp -r (\S+) <pixsim7>/pixsim7/backend/main/providers/npc_video$", text, re.MULTILINE)
    assert (ROOT / copied / "manifest.py").is_file()
    patches = set(re.findall(r"git apply (?:--check )?<npc-video-worker>/(\S+\.patch)", text))
    assert patches == {str(path.relative_to(ROOT)) for path in (ROOT / "integrations" / "pixsim7").glob("*.patch")}
    assert len(patches) == 1


def test_the_variables_listed_are_the_ones_the_plugin_reads():
    listed = set(re.findall(r"^\| `(NPC_VIDEO_[A-Z_]+)` \|", DOC.read_text(encoding="utf-8"), re.MULTILINE))
    source = (ROOT / "integrations" / "pixsim7" / "npc_video" / "config.py").read_text(encoding="utf-8")
    assert (
        listed
        == set(re.findall(r'os\.environ\.get\("(NPC_VIDEO_[A-Z_]+)"', source))
        == {
            "NPC_VIDEO_REDIS_URL",
            "NPC_VIDEO_PREFIX",
        }
    )


def test_the_example_request_is_an_npc_response_the_plugin_accepts():
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.DOTALL)
    (request,) = [json.loads(block) for block in blocks if '"provider_id": "npc-video"' in block]
    config = request["config"]
    assert request["provider_id"] == "npc-video" and 0 <= request["priority"] <= 10
    assert (config["generation_type"], config["semantic_type"]) == ("image_to_video", "npc_response")
    assert config["prompt"] and config["composition_assets"][0]["asset"] == "asset:42"
    NpcResponseParams.model_validate(config["npc_params"])
