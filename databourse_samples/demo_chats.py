"""A Malaysian customer-service desk: chat transcripts of the my-chatdesk/chat_transcripts
sample drop (JSON Lines), in Malay, English and Chinese, and code-switched between them.

Each transcript is a conversation between a customer and an agent about an order, a bill or a
delivery. Customers give their MyKad number, mobile number, e-mail or name in passing (what the
corpus build must replace), beside order numbers and dates (what it must keep). Some
transcripts are the desk's canned greetings (exact duplicates), some are resent with a changed
word (near duplicates), a few carry a licence the product does not allow, and one customer
asked to be left out (opted out by author).
"""

from __future__ import annotations

import json
import random
from typing import Any

from databourse_samples.demo_sensors import occupants

LICENCES = ("CC-BY-4.0", "CC-BY-4.0", "CC-BY-4.0", "ODC-By-1.0", "proprietary")
OPTED_OUT_AUTHOR = "Customer who asked to be left out"
AGENT = {
    "ms": (
        "Terima kasih kerana menghubungi kami dan maaf atas kesulitan ini.",
        "Saya sudah semak rekod pesanan anda dalam sistem kami.",
        "Kami akan hantar semula barang itu dalam masa tiga hari bekerja.",
        "Ada apa-apa lagi yang boleh saya bantu hari ini?",
        "Mohon tunggu sebentar sementara saya semak status penghantaran.",
        "Saya faham kekecewaan anda dan akan uruskan perkara ini segera.",
    ),
    "en": (
        "Thank you for contacting us and I am sorry for the trouble.",
        "I have checked the record of your order in our system.",
        "We will send the item again within three working days.",
        "Is there anything else that I can help you with today?",
        "Please hold on while I check the delivery status for you.",
        "I understand how frustrating this is and I will sort it out right away.",
    ),
    "zh": (
        "感谢您联系我们，给您带来不便非常抱歉。",
        "我已经在系统里查看了您的订单记录。",
        "我们会在三个工作日内重新给您寄出。",
        "请问还有什么可以帮您的吗？",
        "请稍等，我帮您查一下配送状态。",
        "我理解您的心情，我会马上处理这件事。",
    ),
}
GIVE_ID = {
    "ms": "Nombor kad pengenalan saya ialah {mykad} dan telefon saya {phone}.",
    "en": "My IC number is {mykad} and you can call me at {phone}.",
    "zh": "我的身份证号码是 {mykad}，电话是 {phone}。",
}
GIVE_MAIL = {
    "ms": "Sila hantar resit ke emel saya {email} ya.",
    "en": "Please send the receipt to my email {email} when it is done.",
    "zh": "请把收据发到我的邮箱 {email}。",
}
ORDER = {
    "ms": "Nombor pesanan saya ialah {order} yang dibuat pada {date}.",
    "en": "The order number is {order} and I placed it on {date}.",
    "zh": "订单号是 {order}，是在 {date} 下的单。",
}
GREETING = (
    "Selamat datang ke khidmat pelanggan kami. Hello and welcome to our customer service. "
    "Our agents answer between nine in the morning and six in the evening, Monday to Friday. "
    "Please have your order number ready so that we can help you faster. "
    "Sila sediakan nombor pesanan anda supaya kami dapat membantu dengan lebih cepat. "
    "Thank you for your patience and have a good day."
)


def chat_documents(rng: random.Random, scale: float) -> list[dict[str, Any]]:
    """The transcripts, as JSON objects of the chat_transcripts dataset, in id order."""
    n = max(40, round(400 * scale))
    people = occupants(rng, max(20, n // 2))
    docs = []
    for i in range(1, n + 1):
        person = rng.choice(people)
        language = rng.choices(("ms", "en", "zh", "mixed"), weights=(40, 30, 20, 10))[0]
        text = _transcript(rng, language, person)
        author = OPTED_OUT_AUTHOR if i == 7 else person.name
        if i % 25 == 0:
            text = GREETING  # the desk's canned greeting, sent again and again
        docs.append(_document(i, text, author, rng))
    for i in rng.sample(range(len(docs)), max(2, n // 40)):  # resent with one word changed
        again = dict(docs[i], id=f"chat-{len(docs) + 1:06d}")
        again["text"] = docs[i]["text"].replace(" ", "  ", 1)
        docs.append(again)
    return docs


def chat_bytes(docs: list[dict[str, Any]]) -> bytes:
    """JSON Lines, one transcript per line, UTF-8."""
    return "".join(json.dumps(d, ensure_ascii=False) + "\n" for d in docs).encode("utf-8")


def _document(i: int, text: str, author: str, rng: random.Random) -> dict[str, Any]:
    return {
        "id": f"chat-{i:06d}",
        "text": text,
        "source": f"https://chatdesk.my-chatdesk.example/tickets/{100000 + i}",
        "licence": rng.choice(LICENCES),
        "date": f"2026-11-{rng.randint(1, 19):02d}",
        "author": author,
        "consent": rng.random() > 0.03,
    }


def _transcript(rng: random.Random, language: str, person: Any) -> str:
    """Customer and agent turns, drawn from combinations wide enough that two transcripts share
    little beyond the desk's phrases; a code-switched one changes language between turns."""
    langs = ["ms", "en", "zh"] if language == "mixed" else [language] * 3
    rng.shuffle(langs)
    first, second, third = langs
    user = person.name.lower().replace(" ", ".").replace("/", "")
    email = f"{user}{rng.randint(1, 99)}@{rng.choice(MAIL_DOMAINS)}"
    order = f"ORD-2026-{rng.randint(100000, 999999)}"
    date = f"2026-11-{rng.randint(1, 19):02d}"
    item = rng.choice(ITEMS[first])
    lines = [
        f"Pelanggan: {rng.choice(ISSUES[first]).format(item=item)}. "
        f"{ORDER[first].format(order=order, date=date)}",
        f"Ejen: {' '.join(rng.sample(AGENT[second], 2))}",
        f"Pelanggan: {GIVE_ID[first].format(mykad=person.id_number, phone=person.phone)}",
        f"Ejen: {_answer(rng, second)}",
        f"Pelanggan: {_detail(rng, third)}",
        f"Ejen: {_answer(rng, third)} {rng.choice(AGENT[third])}",
    ]
    if rng.random() < 0.5:
        lines.insert(3, f"Pelanggan: {GIVE_MAIL[third].format(email=email)}")
    return "\n".join(lines)


def _answer(rng: random.Random, language: str) -> str:
    when, courier = rng.choice(WHEN[language]), rng.choice(COURIERS)
    return rng.choice(ANSWERS[language]).format(
        when=when, courier=courier, amount=f"RM{rng.randint(5, 480)}.{rng.randint(0, 99):02d}"
    )


def _detail(rng: random.Random, language: str) -> str:
    return rng.choice(DETAILS[language]).format(
        place=rng.choice(PLACES), hour=rng.randint(8, 21), n=rng.randint(2, 9),
        item=rng.choice(ITEMS[language]),
    )  # fmt: skip


MAIL_DOMAINS = ("gmail.com", "yahoo.com.my", "hotmail.com", "outlook.com")
COURIERS = ("Pos Laju", "J&T Express", "Ninja Van", "DHL eCommerce", "City-Link", "GDEX")
PLACES = ("Petaling Jaya", "Shah Alam", "Cheras", "Subang Jaya", "Kepong", "Puchong", "Klang",
          "Johor Bahru", "Ipoh", "Georgetown", "Seremban", "Kota Bharu")  # fmt: skip
ITEMS = {
    "ms": ("periuk nasi", "kipas siling", "telefon bimbit", "kasut sukan", "beg sekolah",
           "cerek elektrik", "mesin basuh", "tilam bujang", "set pinggan", "pengering rambut"),
    "en": ("rice cooker", "ceiling fan", "mobile phone", "running shoes", "school bag",
           "electric kettle", "washing machine", "single mattress", "dinner set", "hair dryer"),
    "zh": ("电饭锅", "吊扇", "手机", "跑鞋", "书包", "电水壶", "洗衣机", "单人床垫", "餐具套装",
           "吹风机"),
}  # fmt: skip
ISSUES = {
    "ms": ("{item} yang saya pesan belum sampai lagi walaupun sudah seminggu",
           "bil bulan ini untuk {item} lebih tinggi daripada biasa",
           "{item} yang saya terima rosak dan saya mahu pulangkan",
           "saya mahu menukar alamat penghantaran untuk {item} ini"),
    "en": ("the {item} I ordered has not arrived although it has been a week",
           "I was charged twice for the {item} this month",
           "the {item} I received is damaged and I would like to return it",
           "I need to change the delivery address for the {item}"),
    "zh": ("我订的{item}已经一个星期了还没有送到", "这个月{item}的费用被扣了两次",
           "我收到的{item}坏了，我想退货", "我需要修改{item}的送货地址"),
}  # fmt: skip
WHEN = {
    "ms": ("esok", "lusa", "dalam masa tiga hari bekerja", "sebelum hujung minggu ini"),
    "en": ("tomorrow", "the day after tomorrow", "within three working days", "before the weekend"),
    "zh": ("明天", "后天", "三个工作日内", "周末之前"),
}  # fmt: skip
ANSWERS = {
    "ms": ("Kami akan hantar semula melalui {courier} {when}.",
           "Bayaran balik sebanyak {amount} akan dikreditkan {when}.",
           "Saya sudah minta {courier} menghubungi anda {when}."),
    "en": ("We will send it again through {courier} {when}.",
           "A refund of {amount} will be credited {when}.",
           "I have asked {courier} to contact you {when}."),
    "zh": ("我们会通过{courier}在{when}重新寄出。", "{amount}的退款会在{when}退回。",
           "我已经请{courier}在{when}联系您。"),
}  # fmt: skip
DETAILS = {
    "ms": ("Saya tinggal di {place} dan biasanya ada di rumah selepas pukul {hour}.",
           "Ini kali ke-{n} saya menghubungi pasal {item} ini.",
           "Boleh hantar ke pejabat saya di {place} sahaja?"),
    "en": ("I live in {place} and I am usually home after {hour} o'clock.",
           "This is the {n} time I am writing about the {item}.",
           "Could you deliver it to my office in {place} instead?"),
    "zh": ("我住在{place}，一般{hour}点以后在家。", "这是我第{n}次为了{item}联系你们了。",
           "可以改送到我在{place}的办公室吗？"),
}  # fmt: skip
