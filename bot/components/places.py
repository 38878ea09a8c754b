"""Place names as data, and one function that masks them (no Rasa import: the app venv tests it).

Which place a citizen names says nothing about the topic of the question, but a model that
sees 常州 in transfer examples and 南京 in none leans on the name. So before the topic model
every place becomes one placeholder: the provinces, every prefecture-level city (and a few
well-known county-level ones), "X市/X县/X区/X州" written out, and the anonymised letters
of message boards (A市, B9市, K9县). The `city` entity (RegexEntityExtractor, lookup
`city`) still reads the original text, so the answer can say when a city is not covered.
"""
from __future__ import annotations

import re
from typing import Iterable, Optional

PLACE_MASK = "某市"

PROVINCES = (
    "北京 天津 上海 重庆 河北 山西 辽宁 吉林 黑龙江 江苏 浙江 安徽 福建 江西 山东 河南 湖北 湖南 广东 "
    "海南 四川 贵州 云南 陕西 甘肃 青海 台湾 内蒙古 广西 西藏 宁夏 新疆 香港 澳门"
).split()

# Prefecture-level cities, leagues and autonomous prefectures, by province, without 市/州.
CITIES = """
石家庄 唐山 秦皇岛 邯郸 邢台 保定 张家口 承德 沧州 廊坊 衡水 雄安
太原 大同 阳泉 长治 晋城 朔州 晋中 运城 忻州 临汾 吕梁
呼和浩特 包头 乌海 赤峰 通辽 鄂尔多斯 呼伦贝尔 巴彦淖尔 乌兰察布 兴安盟 锡林郭勒 阿拉善
沈阳 大连 鞍山 抚顺 本溪 丹东 锦州 营口 阜新 辽阳 盘锦 铁岭 朝阳 葫芦岛
长春 吉林 四平 辽源 通化 白山 松原 白城 延边
哈尔滨 齐齐哈尔 鸡西 鹤岗 双鸭山 大庆 伊春 佳木斯 七台河 牡丹江 黑河 绥化 大兴安岭
南京 无锡 徐州 常州 苏州 南通 连云港 淮安 盐城 扬州 镇江 泰州 宿迁 昆山 江阴 张家港 常熟
杭州 宁波 温州 嘉兴 湖州 绍兴 金华 衢州 舟山 台州 丽水 义乌
合肥 芜湖 蚌埠 淮南 马鞍山 淮北 铜陵 安庆 黄山 滁州 阜阳 宿州 六安 亳州 池州 宣城
福州 厦门 莆田 三明 泉州 漳州 南平 龙岩 宁德
南昌 景德镇 萍乡 九江 新余 鹰潭 赣州 吉安 宜春 抚州 上饶
济南 青岛 淄博 枣庄 东营 烟台 潍坊 济宁 泰安 威海 日照 临沂 德州 聊城 滨州 菏泽
郑州 开封 洛阳 平顶山 安阳 鹤壁 新乡 焦作 濮阳 许昌 漯河 三门峡 南阳 商丘 信阳 周口 驻马店 济源
武汉 黄石 十堰 宜昌 襄阳 鄂州 荆门 孝感 荆州 黄冈 咸宁 随州 恩施 仙桃 潜江 天门
长沙 株洲 湘潭 衡阳 邵阳 岳阳 常德 张家界 益阳 郴州 永州 怀化 娄底 湘西
广州 韶关 深圳 珠海 汕头 佛山 江门 湛江 茂名 肇庆 惠州 梅州 汕尾 河源 阳江 清远 东莞 中山 潮州 揭阳 云浮
南宁 柳州 桂林 梧州 北海 防城港 钦州 贵港 玉林 百色 贺州 河池 来宾 崇左
海口 三亚 三沙 儋州
成都 自贡 攀枝花 泸州 德阳 绵阳 广元 遂宁 内江 乐山 南充 眉山 宜宾 广安 达州 雅安 巴中 资阳 阿坝 甘孜 凉山
贵阳 六盘水 遵义 安顺 毕节 铜仁 黔西南 黔东南 黔南
昆明 曲靖 玉溪 保山 昭通 丽江 普洱 临沧 楚雄 红河 文山 西双版纳 大理 德宏 怒江 迪庆
拉萨 日喀则 昌都 林芝 山南 那曲 阿里
西安 铜川 宝鸡 咸阳 渭南 延安 汉中 榆林 安康 商洛 杨凌
兰州 嘉峪关 金昌 白银 天水 武威 张掖 平凉 酒泉 庆阳 定西 陇南 临夏 甘南
西宁 海东 海北 黄南 海南州 果洛 玉树 海西
银川 石嘴山 吴忠 固原 中卫
乌鲁木齐 克拉玛依 吐鲁番 哈密 昌吉 博尔塔拉 巴音郭楞 阿克苏 克孜勒苏 喀什 和田 伊犁 塔城 阿勒泰 石河子
""".split()

# Names that are also ordinary words (来宾 guests, 白银 silver, 安康 well-being, 阿里...):
# masked only when written with 市/州/地区.
AMBIGUOUS = frozenset("来宾 白银 阿里 安康 长治 中山 大理 朝阳 红河 玉树 普洱 中卫 海北 海东 海西 山南 黄南 "
                      "通化 吉安 延安 泰安 三明 白山 白城 黄山 文山 海南州 迪庆 德宏 和田 昌都 定西 黑河".split())

# Words ending in 市/县/区 that are not places (城市, 超市, 本市 stay: they carry no name).
NOT_PLACES = ("城市", "超市", "本市", "我市", "该市", "外市", "全市", "各市", "同市", "跨市", "此市", "市区",
              "地级市", "县级市", "直辖市", "大城市", "小城市", "其他市", "别的市", "本县", "我县", "该县", "全县",
              "各县", "外县", "跨县", "本区", "该区", "全区", "各区", "城区", "小区", "社区", "新区", "园区")

_LETTER = r"(?<![a-z0-9])[a-z][0-9]{0,2}(?:省|市|县|区|州|镇)"
# A two-character name written with 市/县; characters that rarely start or end a place
# name (在, 的, 城, 本...) are left out, so 其他城市 and 住在市里 stay as they are.
_STOP = "在的了是我你他她们和到从去回住个这那哪本该全各跨外同级辖城超都省于与及或想要给交缴市县区"
_HANZI = f"[^\\W\\da-z_{_STOP}]"
_SUFFIXED = f"{_HANZI}{{2}}(?:市|县)"


def _names_pattern(names: Iterable[str]) -> str:
    ordered = sorted({n for n in names if n}, key=len, reverse=True)
    return "(?:" + "|".join(map(re.escape, ordered)) + ")(?:省|市|县|区|州|盟|地区|自治州|自治区)?"


class PlaceMasker:
    """Replaces place names in normalised (simplified, lower-case) text with PLACE_MASK;
    `extra` adds names (e.g. the `city` lookup table's)."""

    def __init__(self, extra: Iterable[str] = ()) -> None:
        names = _names_pattern([n for n in [*PROVINCES, *CITIES, *extra] if n not in AMBIGUOUS])
        suffixed = "(?:" + "|".join(sorted(AMBIGUOUS, key=len, reverse=True)) + ")(?:市|州|地区)"
        self.pattern = re.compile(f"{_LETTER}|{suffixed}|{names}|{_SUFFIXED}")
        self.district = re.compile(re.escape(PLACE_MASK) + r"[\u4e00-\u9fff]{1,3}?(?:区|县)")

    def _replace(self, match: "re.Match[str]") -> str:
        text = match.group(0)
        return text if text in NOT_PLACES or any(text.endswith(w) for w in NOT_PLACES if len(w) > 2) else PLACE_MASK

    def mask(self, text: str) -> str:
        masked = self.pattern.sub(self._replace, text)
        masked = self.district.sub(PLACE_MASK, masked)  # 某市蜀山区 -> 某市
        return re.sub(f"(?:{PLACE_MASK})+", PLACE_MASK, masked)


_DEFAULT: Optional[PlaceMasker] = None


def mask_places(text: str) -> str:
    """Every place name in `text` as PLACE_MASK, with the built-in list only."""
    global _DEFAULT
    if _DEFAULT is None:
        _DEFAULT = PlaceMasker()
    return _DEFAULT.mask(text)
