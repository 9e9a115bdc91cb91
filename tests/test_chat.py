"""`flowgram chat` as a new user runs it: the feedback bot in a terminal, stdin piped."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import ROOT


def chat(lines: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapters.cli", "chat", *args],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_a_piped_conversation_reads_as_a_transcript() -> None:
    result = chat(
        [
            "/start",
            "1",
            "1234",
            "12345678901234",
            "2",
            "3",
            "Darsxonada proyektor ishlamayapti, iltimos tuzating.",
        ]
    )

    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "you: /start" in out
    assert "[1] 🇺🇿 O'zbekcha   [2] 🇷🇺 Русский" in out
    assert "bot (edited): JSHSHIR (PINFL) raqamingizni yuboring" in out
    assert "JSHSHIR 14 ta raqamdan iborat bo'lishi kerak" in out
    assert "Assalomu alaykum, Aliyev Vali Karimovich!" in out
    assert "keyboard: (k1) ✉️ Xabar yuborish" in out
    assert "Rahmat! Xabaringiz ko'rib chiqishga yuborildi" in out


def test_contacts_media_and_reply_keyboard_verbs_work_in_the_terminal() -> None:
    result = chat(
        [
            "/start",
            "2",
            "23456789012345",
            ":sticker",
            ":contact-other +998911234567",
            "k1",
            "k2",
            ":press Русский",
        ],
        "--user-id",
        "4242",
        "--phone",
        "998901112233",
    )

    out = result.stdout
    assert result.returncode == 0, result.stderr
    assert "keyboard: (k1) 📱 Отправить номер [shares your contact]" in out
    assert "Номер должен быть +998 и 9 цифр" in out
    assert "Отправьте, пожалуйста, свой собственный номер." in out
    assert "✅ Номер телефона сохранён." in out
    assert "(keyboard removed)" in out
    assert "(no keyboard button k2)" in out
    assert "(no button 'Русский' on screen)" in out


def test_the_chat_refuses_to_start_on_a_broken_flow(tmp_path) -> None:
    flows = tmp_path / "flows"
    flows.mkdir()
    (flows / "feedback.yaml").write_text(
        "flow: feedback\nlanguages: [uz]\nstart: a\nstates:\n  a:\n    sya: hi\n    final: true\n"
    )
    config = tmp_path / "config.yaml"
    config.write_text(f"flows: {flows}\n")

    result = subprocess.run(
        [sys.executable, "-m", "adapters.cli", "--config", str(config), "chat"],
        input="",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )

    assert result.returncode == 1
    assert "feedback.yaml:6:5: error: unknown key 'sya'" in result.stderr
    assert "did you mean 'say'?" in result.stderr
