from shouhu.registry.selectors import children_visible_to


def test_village_director_sees_only_own_village(users, hutang_village, make_child):
    child = make_child(hutang_village)
    visible = children_visible_to(users["village_hutang"])
    assert visible.filter(pk=child.pk).exists()
    assert not children_visible_to(users["village_niutang"]).filter(pk=child.pk).exists()
    assert all(c.region_id.startswith(hutang_village.code) for c in visible)
