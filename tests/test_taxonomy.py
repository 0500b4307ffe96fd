import pytest

from hierarchy.errors import UserError
from hierarchy.taxonomy import build_taxonomy, load_taxonomy


def test_fashion_mnist_tree():
    tax = load_taxonomy("fashion_mnist")
    assert tax.num_classes("coarse") == 6 and tax.num_classes("fine") == 10
    assert [tax.coarse[p] for p in tax.parents] == [
        "top",
        "bottom",
        "top",
        "onepiece",
        "outer",
        "shoe",
        "top",
        "shoe",
        "bag",
        "shoe",
    ]
    assert tax.lookup("ankle_boot") == 9 and tax.lookup("7") == 7
    shoe = tax.lookup("shoe", "coarse")
    assert [f for f, p in zip(tax.fine, tax.parents) if p == shoe] == ["Sandal", "Sneaker", "Ankle boot"]


def test_kfashion_styles_pin_23_under_10():
    tax = load_taxonomy("kfashion_style")
    assert tax.num_classes("coarse") == 10 and tax.num_classes("fine") == 23
    street = tax.lookup("스트리트")
    assert tax.fine[street] == "street" and tax.coarse[tax.parents[street]] == "casual"
    # spelling variants found in the JSON files
    assert tax.lookup("키치/키덜트") == tax.lookup("키치") == tax.lookup("kitsch")
    assert tax.lookup("젠더리스/젠더플루이드") == tax.lookup("젠더리스")
    assert tax.coarse[tax.lookup("젠더플루이드", "coarse")] == "genderless"
    sizes = {c: tax.parents.count(i) for i, c in enumerate(tax.coarse)}
    assert sizes == {
        "traditional": 2,
        "mannish": 2,
        "feminine": 3,
        "ethnic": 3,
        "contemporary": 3,
        "natural": 2,
        "genderless": 1,
        "sporty": 1,
        "subculture": 4,
        "casual": 2,
    }


def test_garment_categories():
    tax = load_taxonomy("garment")
    assert set(tax.coarse) == {"hat", "outer", "top", "bottom", "onepiece", "shoe", "bag"}
    kfashion = [f for f, p in zip(tax.fine, tax.parents) if tax.coarse[p] in {"top", "bottom", "outer", "onepiece"}]
    assert len(kfashion) == 21
    assert tax.fine[tax.lookup("후드티")] == "hoodie" and tax.coarse[tax.lookup("아우터", "coarse")] == "outer"


def test_unknown_label_names_valid_ones():
    tax = load_taxonomy("fashion_mnist")
    with pytest.raises(UserError, match="Valid fine names: T-shirt/top, Trouser") as err:
        tax.lookup("Sneakr")
    assert "Did you mean 'Sneaker'" in str(err.value)


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "t", "coarse": ["a", "a"], "fine": [{"name": "x", "parent": "a"}]}, "duplicate class name 'a'"),
        ({"name": "t", "coarse": ["a"], "fine": [{"name": "x", "parent": "zzz"}]}, "orphan"),
        ({"name": "t", "coarse": ["a", "b"], "fine": [{"name": "x", "parent": "a"}]}, "without any fine class"),
        (
            {
                "name": "t",
                "coarse": ["a"],
                "fine": [
                    {"name": "x", "parent": "a", "aliases": ["k"]},
                    {"name": "y", "parent": "a", "aliases": ["K"]},
                ],
            },
            "ambiguous alias",
        ),
        ({"name": "t", "coarse": ["a"], "fine": [{"name": "x", "parent": "a"}], "extra": 1}, "unknown keys"),
    ],
)
def test_invalid_taxonomies(spec, message):
    with pytest.raises(UserError, match=message):
        build_taxonomy(spec)


def test_round_trip_through_dict():
    tax = load_taxonomy("kfashion_style")
    again = build_taxonomy(tax.to_dict())
    assert again.fine == tax.fine and again.parents == tax.parents and again.lookup("힙합") == tax.lookup("hiphop")


def test_missing_taxonomy_lists_known():
    with pytest.raises(UserError, match="Known taxonomies: \\['fashion_mnist', 'garment', 'kfashion_style'\\]"):
        load_taxonomy("nope")
