import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from shouhu.org.models import Region, RegionLevel
from shouhu.org.regions import level_of, parent_code


def test_levels_and_parents_follow_the_code():
    assert level_of("320412000000") == RegionLevel.DISTRICT
    assert level_of("320412100000") == RegionLevel.TOWN
    assert level_of("320412100201") == RegionLevel.VILLAGE
    assert parent_code("320412100201") == "320412100000"
    assert parent_code("320412100000") == "320412000000"


def test_import_gbk_csv_creates_and_updates(db, tmp_path, capsys):
    path = tmp_path / "regions.csv"
    path.write_bytes("统计用区划代码,城乡分类代码,名称\n320412100901,220,试验村民委员会\n".encode("gbk"))
    call_command("import_regions", str(path))
    assert '"created": 1' in capsys.readouterr().out
    village = Region.objects.get(code="320412100901")
    assert village.parent_id == "320412100000" and village.level == RegionLevel.VILLAGE
    assert not village.is_synthetic and village.kind == "village"
    call_command("import_regions", str(path))
    assert '"unchanged": 1' in capsys.readouterr().out


def test_import_is_all_or_nothing(db, tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("统计用区划代码,名称\n320412100902,甲村\n3204121009,乙村\n", encoding="utf-8")
    with pytest.raises(CommandError, match="12位数字"):
        call_command("import_regions", str(path))
    assert not Region.objects.filter(code="320412100902").exists()


def test_import_refuses_orphans(db, tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("统计用区划代码,名称\n320499100001,无上级村\n", encoding="utf-8")
    with pytest.raises(CommandError, match="上级"):
        call_command("import_regions", str(path))
