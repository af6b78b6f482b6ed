"""Downloads' file names: plain ones as they are; any other store id still names a safe file, in
RFC 6266's `filename*` (what curl -OJ and browsers save under), with a plain fallback."""

from urllib.parse import unquote

from store_monitor.api.filenames import PART_MAX_BYTES, attachment, name_part


def test_a_plain_name_is_sent_as_it_is() -> None:
    assert attachment("daily-r-8419537941919820732.csv") == (
        'attachment; filename="daily-r-8419537941919820732.csv"'
    )


def test_any_other_name_goes_in_filename_star_with_a_plain_fallback() -> None:
    name = 'daily-r-Café "Nord" 7;8%.csv'
    disposition = attachment(name)
    assert disposition.startswith('attachment; filename="daily-r-Caf___Nord__7_8_.csv"; ')
    # A client that reads RFC 6266 takes `filename*` first: the name itself, in UTF-8.
    star = disposition.partition("filename*=UTF-8''")[2]
    assert unquote(star) == name
    assert all(char.isascii() and char not in ' ";' for char in star)


def test_a_store_id_never_names_a_path_and_a_long_one_is_cut_apart_from_its_likes() -> None:
    assert name_part("../etc/passwd") == ".._etc_passwd"
    assert name_part('a\\b:c*d?e"f<g>h|i') == "a_b_c_d_e_f_g_h_i"
    long_one, long_two = "é" * 200 + "1", "é" * 200 + "2"
    cut_one, cut_two = name_part(long_one), name_part(long_two)
    assert cut_one != cut_two
    assert len(cut_one.encode()) <= PART_MAX_BYTES
    assert cut_one.startswith("é" * 50)
    assert name_part("8419537941919820732") == "8419537941919820732"
