#!/usr/bin/env python3
"""Build the hand-written multilingual fact set under ``data/facts/``.

This script is the source of truth for the small parallel fact set used by
``lrp2_interp``.  It holds hand-written tables (entities with their names in
six languages, facts as (relation, subject, object) triples, and one template
per relation and language) and writes them in the official mLAMA 1.1 layout:

    data/facts/{lang}/templates.jsonl    {"relation": ..., "template": ..., "label": ...}
    data/facts/{lang}/{relation}.jsonl   {"lineid": ..., "uuid": ..., "sub_uri": ...,
                                          "obj_uri": ..., "sub_label": ..., "obj_label": ...,
                                          "sub_aliases": [...], "obj_aliases": [...]}

It also refreshes the statistics table in ``data/README.md`` (between the
``stats:begin`` / ``stats:end`` markers).

Usage (from the repository root, standard library only):

    python data/build_facts.py            # (re)write data/facts/ and the README table
    python data/build_facts.py --check    # validate the tables and the files on disk

Entity ids: ``Q...`` ids are Wikidata ids written from the authors' knowledge;
``E....`` ids are stable project-local ids used where the Wikidata id was not
known with confidence.  The same entity has the same id in every relation and
every language.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
FACTS_DIR = HERE / "facts"
README = HERE / "README.md"

LANGS = ("en", "fr", "es", "nl", "ru", "zh")
MIN_FACTS_PER_LANG = 200
MIN_FACTS_PER_RELATION = 25
MIN_OBJECTS_PER_RELATION = 4

# --------------------------------------------------------------------------
# Entities: key | id | en | fr | es | nl | ru | zh
# --------------------------------------------------------------------------

COUNTRIES = """
france        | Q142  | France                | France                    | Francia              | Frankrijk             | Франция               | 法国
germany       | Q183  | Germany               | Allemagne                 | Alemania             | Duitsland             | Германия              | 德国
spain         | Q29   | Spain                 | Espagne                   | España               | Spanje                | Испания               | 西班牙
italy         | Q38   | Italy                 | Italie                    | Italia               | Italië                | Италия                | 意大利
portugal      | Q45   | Portugal              | Portugal                  | Portugal             | Portugal              | Португалия            | 葡萄牙
netherlands   | Q55   | Netherlands           | Pays-Bas                  | Países Bajos         | Nederland             | Нидерланды            | 荷兰
belgium       | Q31   | Belgium               | Belgique                  | Bélgica              | België                | Бельгия               | 比利时
luxembourg    | Q32   | Luxembourg            | Luxembourg                | Luxemburgo           | Luxemburg             | Люксембург            | 卢森堡
uk            | Q145  | United Kingdom        | Royaume-Uni               | Reino Unido          | Verenigd Koninkrijk   | Великобритания        | 英国
ireland       | Q27   | Ireland               | Irlande                   | Irlanda              | Ierland               | Ирландия              | 爱尔兰
poland        | Q36   | Poland                | Pologne                   | Polonia              | Polen                 | Польша                | 波兰
lithuania     | Q37   | Lithuania             | Lituanie                  | Lituania             | Litouwen              | Литва                 | 立陶宛
russia        | Q159  | Russia                | Russie                    | Rusia                | Rusland               | Россия                | 俄罗斯
belarus       | Q184  | Belarus               | Biélorussie               | Bielorrusia          | Belarus               | Белоруссия            | 白俄罗斯
ukraine       | Q212  | Ukraine               | Ukraine                   | Ucrania              | Oekraïne              | Украина               | 乌克兰
moldova       | Q217  | Moldova               | Moldavie                  | Moldavia             | Moldavië              | Молдавия              | 摩尔多瓦
romania       | Q218  | Romania               | Roumanie                  | Rumania              | Roemenië              | Румыния               | 罗马尼亚
bulgaria      | Q219  | Bulgaria              | Bulgarie                  | Bulgaria             | Bulgarije             | Болгария              | 保加利亚
serbia        | Q403  | Serbia                | Serbie                    | Serbia               | Servië                | Сербия                | 塞尔维亚
croatia       | Q224  | Croatia               | Croatie                   | Croacia              | Kroatië               | Хорватия              | 克罗地亚
slovenia      | Q215  | Slovenia              | Slovénie                  | Eslovenia            | Slovenië              | Словения              | 斯洛文尼亚
slovakia      | Q214  | Slovakia              | Slovaquie                 | Eslovaquia           | Slowakije             | Словакия              | 斯洛伐克
czechia       | Q213  | Czech Republic        | Tchéquie                  | República Checa      | Tsjechië              | Чехия                 | 捷克
hungary       | Q28   | Hungary               | Hongrie                   | Hungría              | Hongarije             | Венгрия               | 匈牙利
austria       | Q40   | Austria               | Autriche                  | Austria              | Oostenrijk            | Австрия               | 奥地利
switzerland   | Q39   | Switzerland           | Suisse                    | Suiza                | Zwitserland           | Швейцария             | 瑞士
liechtenstein | Q347  | Liechtenstein         | Liechtenstein             | Liechtenstein        | Liechtenstein         | Лихтенштейн           | 列支敦士登
greece        | Q41   | Greece                | Grèce                     | Grecia               | Griekenland           | Греция                | 希腊
sweden        | Q34   | Sweden                | Suède                     | Suecia               | Zweden                | Швеция                | 瑞典
norway        | Q20   | Norway                | Norvège                   | Noruega              | Noorwegen             | Норвегия              | 挪威
finland       | Q33   | Finland               | Finlande                  | Finlandia            | Finland               | Финляндия             | 芬兰
denmark       | Q35   | Denmark               | Danemark                  | Dinamarca            | Denemarken            | Дания                 | 丹麦
iceland       | Q189  | Iceland               | Islande                   | Islandia             | IJsland               | Исландия              | 冰岛
turkey        | Q43   | Turkey                | Turquie                   | Turquía              | Turkije               | Турция                | 土耳其
georgia       | Q230  | Georgia               | Géorgie                   | Georgia              | Georgië               | Грузия                | 格鲁吉亚
china         | Q148  | China                 | Chine                     | China                | China                 | Китай                 | 中国
japan         | Q17   | Japan                 | Japon                     | Japón                | Japan                 | Япония                | 日本
south_korea   | Q884  | South Korea           | Corée du Sud              | Corea del Sur        | Zuid-Korea            | Южная Корея           | 韩国
north_korea   | Q423  | North Korea           | Corée du Nord             | Corea del Norte      | Noord-Korea           | Северная Корея        | 朝鲜
mongolia      | Q711  | Mongolia              | Mongolie                  | Mongolia             | Mongolië              | Монголия              | 蒙古国
kazakhstan    | Q232  | Kazakhstan            | Kazakhstan                | Kazajistán           | Kazachstan            | Казахстан             | 哈萨克斯坦
india         | Q668  | India                 | Inde                      | India                | India                 | Индия                 | 印度
nepal         | Q837  | Nepal                 | Népal                     | Nepal                | Nepal                 | Непал                 | 尼泊尔
pakistan      | Q843  | Pakistan              | Pakistan                  | Pakistán             | Pakistan              | Пакистан              | 巴基斯坦
afghanistan   | Q889  | Afghanistan           | Afghanistan               | Afganistán           | Afghanistan           | Афганистан            | 阿富汗
iran          | Q794  | Iran                  | Iran                      | Irán                 | Iran                  | Иран                  | 伊朗
iraq          | Q796  | Iraq                  | Irak                      | Irak                 | Irak                  | Ирак                  | 伊拉克
saudi_arabia  | Q851  | Saudi Arabia          | Arabie saoudite           | Arabia Saudita       | Saoedi-Arabië         | Саудовская Аравия     | 沙特阿拉伯
yemen         | Q805  | Yemen                 | Yémen                     | Yemen                | Jemen                 | Йемен                 | 也门
thailand      | Q869  | Thailand              | Thaïlande                 | Tailandia            | Thailand              | Таиланд               | 泰国
vietnam       | Q881  | Vietnam               | Vietnam                   | Vietnam              | Vietnam               | Вьетнам               | 越南
cambodia      | Q424  | Cambodia              | Cambodge                  | Camboya              | Cambodja              | Камбоджа              | 柬埔寨
malaysia      | Q833  | Malaysia              | Malaisie                  | Malasia              | Maleisië              | Малайзия              | 马来西亚
indonesia     | Q252  | Indonesia             | Indonésie                 | Indonesia            | Indonesië             | Индонезия             | 印度尼西亚
philippines   | Q928  | Philippines           | Philippines               | Filipinas            | Filipijnen            | Филиппины             | 菲律宾
egypt         | Q79   | Egypt                 | Égypte                    | Egipto               | Egypte                | Египет                | 埃及
libya         | Q1016 | Libya                 | Libye                     | Libia                | Libië                 | Ливия                 | 利比亚
morocco       | Q1028 | Morocco               | Maroc                     | Marruecos            | Marokko               | Марокко               | 摩洛哥
algeria       | Q262  | Algeria               | Algérie                   | Argelia              | Algerije              | Алжир                 | 阿尔及利亚
ghana         | Q117  | Ghana                 | Ghana                     | Ghana                | Ghana                 | Гана                  | 加纳
nigeria       | Q1033 | Nigeria               | Nigeria                   | Nigeria              | Nigeria               | Нигерия               | 尼日利亚
cameroon      | Q1009 | Cameroon              | Cameroun                  | Camerún              | Kameroen              | Камерун               | 喀麦隆
ethiopia      | Q115  | Ethiopia              | Éthiopie                  | Etiopía              | Ethiopië              | Эфиопия               | 埃塞俄比亚
kenya         | Q114  | Kenya                 | Kenya                     | Kenia                | Kenia                 | Кения                 | 肯尼亚
angola        | Q916  | Angola                | Angola                    | Angola               | Angola                | Ангола                | 安哥拉
mozambique    | Q1029 | Mozambique            | Mozambique                | Mozambique           | Mozambique            | Мозамбик              | 莫桑比克
south_africa  | Q258  | South Africa          | Afrique du Sud            | Sudáfrica            | Zuid-Afrika           | ЮАР                   | 南非
usa           | Q30   | United States         | États-Unis                | Estados Unidos       | Verenigde Staten      | США                   | 美国
canada        | Q16   | Canada                | Canada                    | Canadá               | Canada                | Канада                | 加拿大
mexico        | Q96   | Mexico                | Mexique                   | México               | Mexico                | Мексика               | 墨西哥
guatemala     | Q774  | Guatemala             | Guatemala                 | Guatemala            | Guatemala             | Гватемала             | 危地马拉
cuba          | Q241  | Cuba                  | Cuba                      | Cuba                 | Cuba                  | Куба                  | 古巴
colombia      | Q739  | Colombia              | Colombie                  | Colombia             | Colombia              | Колумбия              | 哥伦比亚
venezuela     | Q717  | Venezuela             | Venezuela                 | Venezuela            | Venezuela             | Венесуэла             | 委内瑞拉
peru          | Q419  | Peru                  | Pérou                     | Perú                 | Peru                  | Перу                  | 秘鲁
bolivia       | Q750  | Bolivia               | Bolivie                   | Bolivia              | Bolivia               | Боливия               | 玻利维亚
brazil        | Q155  | Brazil                | Brésil                    | Brasil               | Brazilië              | Бразилия              | 巴西
paraguay      | Q733  | Paraguay              | Paraguay                  | Paraguay             | Paraguay              | Парагвай              | 巴拉圭
argentina     | Q414  | Argentina             | Argentine                 | Argentina            | Argentinië            | Аргентина             | 阿根廷
chile         | Q298  | Chile                 | Chili                     | Chile                | Chili                 | Чили                  | 智利
australia     | Q408  | Australia             | Australie                 | Australia            | Australië             | Австралия             | 澳大利亚
new_zealand   | Q664  | New Zealand           | Nouvelle-Zélande          | Nueva Zelanda        | Nieuw-Zeeland         | Новая Зеландия        | 新西兰
fiji          | Q712  | Fiji                  | Fidji                     | Fiyi                 | Fiji                  | Фиджи                 | 斐济
papua         | Q691  | Papua New Guinea      | Papouasie-Nouvelle-Guinée | Papúa Nueva Guinea   | Papoea-Nieuw-Guinea   | Папуа — Новая Гвинея  | 巴布亚新几内亚
"""

# National capitals (subjects of P1376, objects of P36).
CAPITALS = """
paris         | Q90    | Paris                 | Paris                     | París                | Parijs                | Париж                 | 巴黎
berlin        | Q64    | Berlin                | Berlin                    | Berlín               | Berlijn               | Берлин                | 柏林
madrid        | Q2807  | Madrid                | Madrid                    | Madrid               | Madrid                | Мадрид                | 马德里
rome          | Q220   | Rome                  | Rome                      | Roma                 | Rome                  | Рим                   | 罗马
lisbon        | Q597   | Lisbon                | Lisbonne                  | Lisboa               | Lissabon              | Лиссабон              | 里斯本
amsterdam     | Q727   | Amsterdam             | Amsterdam                 | Ámsterdam            | Amsterdam             | Амстердам             | 阿姆斯特丹
brussels      | Q239   | Brussels              | Bruxelles                 | Bruselas             | Brussel               | Брюссель              | 布鲁塞尔
london        | Q84    | London                | Londres                   | Londres              | Londen                | Лондон                | 伦敦
dublin        | Q1761  | Dublin                | Dublin                    | Dublín               | Dublin                | Дублин                | 都柏林
warsaw        | Q270   | Warsaw                | Varsovie                  | Varsovia             | Warschau              | Варшава               | 华沙
moscow        | Q649   | Moscow                | Moscou                    | Moscú                | Moskou                | Москва                | 莫斯科
stockholm     | Q1754  | Stockholm             | Stockholm                 | Estocolmo            | Stockholm             | Стокгольм             | 斯德哥尔摩
oslo          | Q585   | Oslo                  | Oslo                      | Oslo                 | Oslo                  | Осло                  | 奥斯陆
helsinki      | Q1757  | Helsinki              | Helsinki                  | Helsinki             | Helsinki              | Хельсинки             | 赫尔辛基
copenhagen    | Q1748  | Copenhagen            | Copenhague                | Copenhague           | Kopenhagen            | Копенгаген            | 哥本哈根
athens        | Q1524  | Athens                | Athènes                   | Atenas               | Athene                | Афины                 | 雅典
vienna        | Q1741  | Vienna                | Vienne                    | Viena                | Wenen                 | Вена                  | 维也纳
budapest      | Q1781  | Budapest              | Budapest                  | Budapest             | Boedapest             | Будапешт              | 布达佩斯
prague        | Q1085  | Prague                | Prague                    | Praga                | Praag                 | Прага                 | 布拉格
kyiv          | Q1899  | Kyiv                  | Kiev                      | Kiev                 | Kiev                  | Киев                  | 基辅
bucharest     | Q19660 | Bucharest             | Bucarest                  | Bucarest             | Boekarest             | Бухарест              | 布加勒斯特
ankara        | Q3640  | Ankara                | Ankara                    | Ankara               | Ankara                | Анкара                | 安卡拉
beijing       | Q956   | Beijing               | Pékin                     | Pekín                | Peking                | Пекин                 | 北京
tokyo         | Q1490  | Tokyo                 | Tokyo                     | Tokio                | Tokio                 | Токио                 | 东京
seoul         | Q8684  | Seoul                 | Séoul                     | Seúl                 | Seoel                 | Сеул                  | 首尔
new_delhi     | Q987   | New Delhi             | New Delhi                 | Nueva Delhi          | New Delhi             | Нью-Дели              | 新德里
bangkok       | Q1861  | Bangkok               | Bangkok                   | Bangkok              | Bangkok               | Бангкок               | 曼谷
hanoi         | Q1858  | Hanoi                 | Hanoï                     | Hanói                | Hanoi                 | Ханой                 | 河内
tehran        | Q3616  | Tehran                | Téhéran                   | Teherán              | Teheran               | Тегеран               | 德黑兰
cairo         | Q85    | Cairo                 | Le Caire                  | El Cairo             | Caïro                 | Каир                  | 开罗
rabat         | E0201  | Rabat                 | Rabat                     | Rabat                | Rabat                 | Рабат                 | 拉巴特
abuja         | E0202  | Abuja                 | Abuja                     | Abuja                | Abuja                 | Абуджа                | 阿布贾
nairobi       | E0203  | Nairobi               | Nairobi                   | Nairobi              | Nairobi               | Найроби               | 内罗毕
addis_ababa   | E0204  | Addis Ababa           | Addis-Abeba               | Adís Abeba           | Addis Abeba           | Аддис-Абеба           | 亚的斯亚贝巴
washington    | Q61    | Washington, D.C.      | Washington                | Washington D. C.     | Washington D.C.       | Вашингтон             | 华盛顿
ottawa        | Q1930  | Ottawa                | Ottawa                    | Ottawa               | Ottawa                | Оттава                | 渥太华
mexico_city   | Q1489  | Mexico City           | Mexico                    | Ciudad de México     | Mexico-Stad           | Мехико                | 墨西哥城
brasilia      | Q2844  | Brasília              | Brasilia                  | Brasilia             | Brasilia              | Бразилиа              | 巴西利亚
buenos_aires  | Q1486  | Buenos Aires          | Buenos Aires              | Buenos Aires         | Buenos Aires          | Буэнос-Айрес          | 布宜诺斯艾利斯
santiago      | Q2887  | Santiago              | Santiago                  | Santiago de Chile    | Santiago              | Сантьяго              | 圣地亚哥
lima          | Q2868  | Lima                  | Lima                      | Lima                 | Lima                  | Лима                  | 利马
bogota        | Q2841  | Bogotá                | Bogota                    | Bogotá               | Bogota                | Богота                | 波哥大
canberra      | Q3114  | Canberra              | Canberra                  | Canberra             | Canberra              | Канберра              | 堪培拉
wellington    | Q23661 | Wellington            | Wellington                | Wellington           | Wellington            | Веллингтон            | 惠灵顿
havana        | E0205  | Havana                | La Havane                 | La Habana            | Havana                | Гавана                | 哈瓦那
caracas       | E0206  | Caracas               | Caracas                   | Caracas              | Caracas               | Каракас               | 加拉加斯
islamabad     | E0207  | Islamabad             | Islamabad                 | Islamabad            | Islamabad             | Исламабад             | 伊斯兰堡
riyadh        | E0208  | Riyadh                | Riyad                     | Riad                 | Riyad                 | Эр-Рияд               | 利雅得
manila        | E0209  | Manila                | Manille                   | Manila               | Manilla               | Манила                | 马尼拉
belgrade      | Q3711  | Belgrade              | Belgrade                  | Belgrado             | Belgrado              | Белград               | 贝尔格莱德
zagreb        | Q1435  | Zagreb                | Zagreb                    | Zagreb               | Zagreb                | Загреб                | 萨格勒布
sofia         | Q472   | Sofia                 | Sofia                     | Sofía                | Sofia                 | София                 | 索非亚
reykjavik     | Q1764  | Reykjavík             | Reykjavik                 | Reikiavik            | Reykjavik             | Рейкьявик             | 雷克雅未克
ulaanbaatar   | E0210  | Ulaanbaatar           | Oulan-Bator               | Ulán Bator           | Ulaanbaatar           | Улан-Батор            | 乌兰巴托
astana        | E0211  | Astana                | Astana                    | Astaná               | Astana                | Астана                | 阿斯塔纳
"""

# Other large cities that are not national capitals (subjects of P17).
CITIES = """
new_york      | Q60    | New York City         | New York                  | Nueva York           | New York              | Нью-Йорк              | 纽约
los_angeles   | Q65    | Los Angeles           | Los Angeles               | Los Ángeles          | Los Angeles           | Лос-Анджелес          | 洛杉矶
chicago       | Q1297  | Chicago               | Chicago                   | Chicago              | Chicago               | Чикаго                | 芝加哥
san_francisco | Q62    | San Francisco         | San Francisco             | San Francisco        | San Francisco         | Сан-Франциско         | 旧金山
hamburg       | Q1055  | Hamburg               | Hambourg                  | Hamburgo             | Hamburg               | Гамбург               | 汉堡
munich        | Q1726  | Munich                | Munich                    | Múnich               | München               | Мюнхен                | 慕尼黑
frankfurt     | Q1794  | Frankfurt             | Francfort                 | Fráncfort            | Frankfurt             | Франкфурт-на-Майне    | 法兰克福
cologne       | Q365   | Cologne               | Cologne                   | Colonia              | Keulen                | Кёльн                 | 科隆
marseille     | Q23482 | Marseille             | Marseille                 | Marsella             | Marseille             | Марсель               | 马赛
lyon          | Q456   | Lyon                  | Lyon                      | Lyon                 | Lyon                  | Лион                  | 里昂
barcelona     | Q1492  | Barcelona             | Barcelone                 | Barcelona            | Barcelona             | Барселона             | 巴塞罗那
seville       | E0301  | Seville               | Séville                   | Sevilla              | Sevilla               | Севилья               | 塞维利亚
milan         | Q490   | Milan                 | Milan                     | Milán                | Milaan                | Милан                 | 米兰
naples        | Q2634  | Naples                | Naples                    | Nápoles              | Napels                | Неаполь               | 那不勒斯
venice        | Q641   | Venice                | Venise                    | Venecia              | Venetië               | Венеция               | 威尼斯
florence      | Q2044  | Florence              | Florence                  | Florencia            | Florence              | Флоренция             | 佛罗伦萨
manchester    | Q18125 | Manchester            | Manchester                | Mánchester           | Manchester            | Манчестер             | 曼彻斯特
liverpool     | Q24826 | Liverpool             | Liverpool                 | Liverpool            | Liverpool             | Ливерпуль             | 利物浦
rotterdam     | Q34370 | Rotterdam             | Rotterdam                 | Róterdam             | Rotterdam             | Роттердам             | 鹿特丹
antwerp       | Q12892 | Antwerp               | Anvers                    | Amberes              | Antwerpen             | Антверпен             | 安特卫普
porto         | E0302  | Porto                 | Porto                     | Oporto               | Porto                 | Порту                 | 波尔图
st_petersburg | Q656   | Saint Petersburg      | Saint-Pétersbourg         | San Petersburgo      | Sint-Petersburg       | Санкт-Петербург       | 圣彼得堡
krakow        | Q31487 | Kraków                | Cracovie                  | Cracovia             | Krakau                | Краков                | 克拉科夫
istanbul      | Q406   | Istanbul              | Istanbul                  | Estambul             | Istanboel             | Стамбул               | 伊斯坦布尔
shanghai      | Q8686  | Shanghai              | Shanghai                  | Shanghái             | Shanghai              | Шанхай                | 上海
shenzhen      | E0303  | Shenzhen              | Shenzhen                  | Shenzhen             | Shenzhen              | Шэньчжэнь             | 深圳
osaka         | Q35765 | Osaka                 | Osaka                     | Osaka                | Osaka                 | Осака                 | 大阪
kyoto         | Q34600 | Kyoto                 | Kyoto                     | Kioto                | Kyoto                 | Киото                 | 京都
busan         | E0304  | Busan                 | Busan                     | Busan                | Busan                 | Пусан                 | 釜山
mumbai        | Q1156  | Mumbai                | Bombay                    | Bombay               | Mumbai                | Мумбаи                | 孟买
ho_chi_minh   | E0305  | Ho Chi Minh City      | Hô-Chi-Minh-Ville         | Ciudad Ho Chi Minh   | Ho Chi Minhstad       | Хошимин               | 胡志明市
sydney        | Q3130  | Sydney                | Sydney                    | Sídney               | Sydney                | Сидней                | 悉尼
melbourne     | Q3141  | Melbourne             | Melbourne                 | Melbourne            | Melbourne             | Мельбурн              | 墨尔本
toronto       | Q172   | Toronto               | Toronto                   | Toronto              | Toronto               | Торонто               | 多伦多
montreal      | Q340   | Montreal              | Montréal                  | Montreal             | Montreal              | Монреаль              | 蒙特利尔
vancouver     | Q24639 | Vancouver             | Vancouver                 | Vancouver            | Vancouver             | Ванкувер              | 温哥华
sao_paulo     | Q174   | São Paulo             | São Paulo                 | São Paulo            | São Paulo             | Сан-Паулу             | 圣保罗
rio           | Q8678  | Rio de Janeiro        | Rio de Janeiro            | Río de Janeiro       | Rio de Janeiro        | Рио-де-Жанейро        | 里约热内卢
geneva        | Q71    | Geneva                | Genève                    | Ginebra              | Genève                | Женева                | 日内瓦
zurich        | Q72    | Zurich                | Zurich                    | Zúrich               | Zürich                | Цюрих                 | 苏黎世
gothenburg    | E0306  | Gothenburg            | Göteborg                  | Gotemburgo           | Göteborg              | Гётеборг              | 哥德堡
salzburg      | E0307  | Salzburg              | Salzbourg                 | Salzburgo            | Salzburg              | Зальцбург             | 萨尔茨堡
alexandria    | Q87    | Alexandria            | Alexandrie                | Alejandría           | Alexandrië            | Александрия           | 亚历山大港
casablanca    | E0308  | Casablanca            | Casablanca                | Casablanca           | Casablanca            | Касабланка            | 卡萨布兰卡
johannesburg  | E0309  | Johannesburg          | Johannesburg              | Johannesburgo        | Johannesburg          | Йоханнесбург          | 约翰内斯堡
"""

CONTINENTS = """
europe        | Q46    | Europe                | Europe                    | Europa               | Europa                | Европа                | 欧洲
asia          | Q48    | Asia                  | Asie                      | Asia                 | Azië                  | Азия                  | 亚洲
africa        | Q15    | Africa                | Afrique                   | África               | Afrika                | Африка                | 非洲
north_america | Q49    | North America         | Amérique du Nord          | América del Norte    | Noord-Amerika         | Северная Америка      | 北美洲
south_america | Q18    | South America         | Amérique du Sud           | América del Sur      | Zuid-Amerika          | Южная Америка         | 南美洲
oceania       | Q55643 | Oceania               | Océanie                   | Oceanía              | Oceanië               | Океания               | 大洋洲
"""

# Languages: short adjectival forms that fit the templates
# (fr "le [Y]", es "el [Y]", nl "het [Y]", ru "язык ... — [Y]").
LANGUAGES = """
lang_fr       | Q150   | French                | français                  | francés              | Frans                 | французский           | 法语
lang_de       | Q188   | German                | allemand                  | alemán               | Duits                 | немецкий              | 德语
lang_it       | Q652   | Italian               | italien                   | italiano             | Italiaans             | итальянский           | 意大利语
lang_es       | Q1321  | Spanish               | espagnol                  | español              | Spaans                | испанский             | 西班牙语
lang_pt       | Q5146  | Portuguese            | portugais                 | portugués            | Portugees             | португальский         | 葡萄牙语
lang_pl       | Q809   | Polish                | polonais                  | polaco               | Pools                 | польский              | 波兰语
lang_ru       | Q7737  | Russian               | russe                     | ruso                 | Russisch              | русский               | 俄语
lang_sv       | Q9027  | Swedish               | suédois                   | sueco                | Zweeds                | шведский              | 瑞典语
lang_el       | Q9129  | Greek                 | grec                      | griego               | Grieks                | греческий             | 希腊语
lang_hu       | Q9067  | Hungarian             | hongrois                  | húngaro              | Hongaars              | венгерский            | 匈牙利语
lang_cs       | Q9056  | Czech                 | tchèque                   | checo                | Tsjechisch            | чешский               | 捷克语
lang_uk       | Q8798  | Ukrainian             | ukrainien                 | ucraniano            | Oekraïens             | украинский            | 乌克兰语
lang_ro       | Q7913  | Romanian              | roumain                   | rumano               | Roemeens              | румынский             | 罗马尼亚语
lang_bg       | Q7918  | Bulgarian             | bulgare                   | búlgaro              | Bulgaars              | болгарский            | 保加利亚语
lang_tr       | Q256   | Turkish               | turc                      | turco                | Turks                 | турецкий              | 土耳其语
lang_zh       | Q7850  | Chinese               | chinois                   | chino                | Chinees               | китайский             | 汉语
lang_ko       | Q9176  | Korean                | coréen                    | coreano              | Koreaans              | корейский             | 韩语
lang_nl       | Q7411  | Dutch                 | néerlandais               | neerlandés           | Nederlands            | нидерландский         | 荷兰语
lang_no       | Q9043  | Norwegian             | norvégien                 | noruego              | Noors                 | норвежский            | 挪威语
lang_da       | Q9035  | Danish                | danois                    | danés                | Deens                 | датский               | 丹麦语
lang_is       | Q294   | Icelandic             | islandais                 | islandés             | IJslands              | исландский            | 冰岛语
lang_ar       | Q13955 | Arabic                | arabe                     | árabe                | Arabisch              | арабский              | 阿拉伯语
lang_fa       | Q9168  | Persian               | persan                    | persa                | Perzisch              | персидский            | 波斯语
lang_vi       | Q9199  | Vietnamese            | vietnamien                | vietnamita           | Vietnamees            | вьетнамский           | 越南语
lang_th       | Q9217  | Thai                  | thaï                      | tailandés            | Thai                  | тайский               | 泰语
lang_id       | Q9240  | Indonesian            | indonésien                | indonesio            | Indonesisch           | индонезийский         | 印度尼西亚语
"""

CURRENCIES = """
eur           | Q4916  | euro                  | euro                      | euro                 | euro                  | евро                  | 欧元
jpy           | Q8146  | Japanese yen          | yen                       | yen                  | yen                   | иена                  | 日元
cny           | Q39099 | renminbi              | yuan                      | yuan                 | renminbi              | юань                  | 人民币
gbp           | Q25224 | pound sterling        | livre sterling            | libra esterlina      | pond sterling         | фунт стерлингов       | 英镑
usd           | Q4917  | United States dollar  | dollar américain          | dólar estadounidense | Amerikaanse dollar    | доллар США            | 美元
cad           | E0101  | Canadian dollar       | dollar canadien           | dólar canadiense     | Canadese dollar       | канадский доллар      | 加拿大元
aud           | E0102  | Australian dollar     | dollar australien         | dólar australiano    | Australische dollar   | австралийский доллар  | 澳大利亚元
nzd           | E0103  | New Zealand dollar    | dollar néo-zélandais      | dólar neozelandés    | Nieuw-Zeelandse dollar | новозеландский доллар | 新西兰元
chf           | Q25344 | Swiss franc           | franc suisse              | franco suizo         | Zwitserse frank       | швейцарский франк     | 瑞士法郎
rub           | Q41044 | Russian ruble         | rouble russe              | rublo ruso           | Russische roebel      | российский рубль      | 俄罗斯卢布
inr           | Q80524 | Indian rupee          | roupie indienne           | rupia india          | Indiase roepie        | индийская рупия       | 印度卢比
sek           | E0104  | Swedish krona         | couronne suédoise         | corona sueca         | Zweedse kroon         | шведская крона        | 瑞典克朗
nok           | E0105  | Norwegian krone       | couronne norvégienne      | corona noruega       | Noorse kroon          | норвежская крона      | 挪威克朗
dkk           | E0106  | Danish krone          | couronne danoise          | corona danesa        | Deense kroon          | датская крона         | 丹麦克朗
pln           | E0107  | Polish złoty          | złoty                     | zloty                | złoty                 | польский злотый       | 波兰兹罗提
czk           | E0108  | Czech koruna          | couronne tchèque          | corona checa         | Tsjechische kroon     | чешская крона         | 捷克克朗
huf           | E0109  | Hungarian forint      | forint                    | forinto              | forint                | венгерский форинт     | 匈牙利福林
try           | E0110  | Turkish lira          | livre turque              | lira turca           | Turkse lira           | турецкая лира         | 土耳其里拉
krw           | E0111  | South Korean won      | won sud-coréen            | won surcoreano       | Zuid-Koreaanse won    | южнокорейская вона    | 韩元
brl           | E0112  | Brazilian real        | real brésilien            | real brasileño       | Braziliaanse real     | бразильский реал      | 巴西雷亚尔
mxn           | E0113  | Mexican peso          | peso mexicain             | peso mexicano        | Mexicaanse peso       | мексиканское песо     | 墨西哥比索
ars           | E0114  | Argentine peso        | peso argentin             | peso argentino       | Argentijnse peso      | аргентинское песо     | 阿根廷比索
uah           | E0115  | Ukrainian hryvnia     | hryvnia                   | grivna               | hryvnja               | украинская гривна     | 乌克兰格里夫纳
egp           | E0116  | Egyptian pound        | livre égyptienne          | libra egipcia        | Egyptisch pond        | египетский фунт       | 埃及镑
zar           | E0117  | South African rand    | rand                      | rand                 | rand                  | южноафриканский рэнд  | 南非兰特
thb           | E0118  | Thai baht             | baht                      | baht                 | baht                  | тайский бат           | 泰铢
idr           | E0119  | Indonesian rupiah     | roupie indonésienne       | rupia indonesia      | Indonesische roepia   | индонезийская рупия   | 印度尼西亚盾
vnd           | E0120  | Vietnamese đồng       | dông                      | dong vietnamita      | Vietnamese dong       | вьетнамский донг      | 越南盾
"""

# Well-known alternative names: key -> {lang: [aliases]}.
ALIASES: dict[str, dict[str, list[str]]] = {
    # countries
    "netherlands": {
        "en": ["the Netherlands", "Holland"],
        "fr": ["Hollande"],
        "es": ["Holanda"],
        "nl": ["Holland"],
        "ru": ["Голландия"],
    },
    "uk": {
        "en": ["UK", "Britain", "Great Britain"],
        "fr": ["Grande-Bretagne"],
        "es": ["Gran Bretaña"],
        "nl": ["Groot-Brittannië"],
        "ru": ["Соединённое Королевство"],
    },
    "belarus": {"nl": ["Wit-Rusland"], "ru": ["Беларусь"], "fr": ["Bélarus"]},
    "moldova": {"ru": ["Молдова"]},
    "romania": {"es": ["Rumanía"]},
    "czechia": {"en": ["Czechia"], "fr": ["République tchèque"], "es": ["Chequia"], "nl": ["Tsjechische Republiek"]},
    "turkey": {"en": ["Türkiye"], "fr": ["Türkiye"], "es": ["Türkiye"]},
    "south_korea": {"en": ["Republic of Korea"], "ru": ["Республика Корея"], "zh": ["南韩", "大韩民国"]},
    "north_korea": {"ru": ["КНДР"], "zh": ["北韩", "朝鲜民主主义人民共和国"]},
    "mongolia": {"zh": ["蒙古"]},
    "kazakhstan": {"es": ["Kazajstán"]},
    "saudi_arabia": {"es": ["Arabia Saudí"]},
    "vietnam": {"en": ["Viet Nam"], "fr": ["Viêt Nam"]},
    "indonesia": {"zh": ["印尼"]},
    "iran": {"es": ["Irán"]},
    "south_africa": {"ru": ["Южно-Африканская Республика", "Южная Африка"]},
    "usa": {
        "en": ["United States of America", "USA", "US"],
        "fr": ["Amérique"],
        "es": ["EE. UU.", "Estados Unidos de América"],
        "nl": ["Verenigde Staten van Amerika", "VS"],
        "ru": ["Соединённые Штаты Америки", "Соединённые Штаты"],
        "zh": ["美利坚合众国"],
    },
    "papua": {"ru": ["Папуа - Новая Гвинея", "Папуа-Новая Гвинея"]},
    # capitals
    "kyiv": {"en": ["Kiev"], "fr": ["Kyiv"], "es": ["Kyiv"], "nl": ["Kyiv"], "ru": ["Київ"]},
    "beijing": {"en": ["Peking"], "fr": ["Beijing"], "es": ["Beijing"], "nl": ["Beijing"]},
    "seoul": {"nl": ["Seoul"]},
    "washington": {
        "en": ["Washington"],
        "fr": ["Washington D.C."],
        "es": ["Washington"],
        "nl": ["Washington"],
        "zh": ["华盛顿哥伦比亚特区"],
    },
    "mexico_city": {"fr": ["Mexico City"], "es": ["México D. F."]},
    "santiago": {"fr": ["Santiago du Chili"], "es": ["Santiago"], "nl": ["Santiago de Chile"]},
    "brasilia": {"fr": ["Brasília"], "es": ["Brasília"], "nl": ["Brasília"]},
    "bogota": {"fr": ["Bogotá"], "nl": ["Bogotá"]},
    "reykjavik": {"en": ["Reykjavik"], "fr": ["Reykjavík"], "es": ["Reykjavik"], "nl": ["Reykjavík"]},
    "riyadh": {"ru": ["Рияд"], "es": ["Riyad"]},
    "ulaanbaatar": {"en": ["Ulan Bator"], "fr": ["Ulaanbaatar"], "es": ["Ulan Bator"], "nl": ["Oelan Bator"]},
    "abuja": {"es": ["Abuya"]},
    "amsterdam": {"es": ["Amsterdam"]},
    "budapest": {"nl": ["Budapest"]},
    "new_delhi": {"ru": ["Дели"]},
    "astana": {"es": ["Astana"]},
    # cities
    "new_york": {"en": ["New York"], "es": ["Nueva York"], "ru": ["Нью-Йорк Сити"]},
    "frankfurt": {
        "en": ["Frankfurt am Main"],
        "fr": ["Francfort-sur-le-Main"],
        "es": ["Fráncfort del Meno"],
        "nl": ["Frankfurt am Main"],
        "ru": ["Франкфурт"],
    },
    "munich": {"en": ["München"]},
    "cologne": {"en": ["Köln"]},
    "kyoto": {"es": ["Kyoto"]},
    "los_angeles": {"en": ["LA"], "es": ["Los Angeles"]},
    "sydney": {"es": ["Sydney"]},
    "rotterdam": {"es": ["Rotterdam"]},
    "manchester": {"es": ["Manchester"]},
    "mumbai": {"en": ["Bombay"], "fr": ["Mumbai"], "es": ["Mumbai"], "nl": ["Bombay"], "ru": ["Бомбей"]},
    "sao_paulo": {"es": ["San Pablo"]},
    "shanghai": {"es": ["Shanghai"]},
    "zurich": {"en": ["Zürich"], "fr": ["Zürich"]},
    "ho_chi_minh": {
        "en": ["Saigon"],
        "fr": ["Saïgon"],
        "es": ["Saigón"],
        "nl": ["Saigon"],
        "ru": ["Сайгон"],
        "zh": ["西贡"],
    },
    "busan": {"en": ["Pusan"], "ru": ["Бусан"]},
    "st_petersburg": {"en": ["St. Petersburg"], "ru": ["Петербург"]},
    "krakow": {"en": ["Krakow", "Cracow"], "nl": ["Kraków"]},
    "alexandria": {"zh": ["亚历山大"]},
    "san_francisco": {"zh": ["三藩市"]},
    "seville": {"en": ["Sevilla"]},
    "gothenburg": {"en": ["Göteborg"]},
    # languages
    "lang_zh": {
        "en": ["Mandarin", "Standard Chinese"],
        "fr": ["mandarin"],
        "es": ["mandarín"],
        "nl": ["Mandarijn"],
        "zh": ["中文", "普通话"],
    },
    "lang_ko": {"zh": ["朝鲜语", "韩国语"]},
    "lang_nl": {"es": ["holandés"], "ru": ["голландский"]},
    "lang_es": {"es": ["castellano"]},
    "lang_fa": {"en": ["Farsi"], "fr": ["farsi"], "es": ["farsi"], "nl": ["Farsi"], "ru": ["фарси"]},
    "lang_id": {"zh": ["印尼语"]},
    "lang_th": {"nl": ["Thais"]},
    # currencies
    "jpy": {"en": ["yen"], "ru": ["йена", "японская иена"]},
    "cny": {
        "en": ["yuan", "Chinese yuan"],
        "fr": ["renminbi"],
        "es": ["renminbi"],
        "nl": ["yuan"],
        "ru": ["жэньминьби", "китайский юань"],
    },
    "usd": {"en": ["US dollar", "American dollar"], "ru": ["американский доллар"]},
    "cad": {"zh": ["加元"]},
    "aud": {"zh": ["澳元"]},
    "nzd": {"zh": ["纽元"]},
    "rub": {"ru": ["рубль"], "zh": ["卢布"]},
    "pln": {
        "en": ["Polish zloty", "złoty"],
        "fr": ["zloty"],
        "es": ["esloti", "złoty"],
        "nl": ["zloty"],
        "ru": ["злотый"],
    },
    "huf": {"fr": ["forint hongrois"], "es": ["forint"], "nl": ["Hongaarse forint"], "ru": ["форинт"]},
    "uah": {"en": ["hryvnia"], "es": ["hryvnia"], "nl": ["grivna"], "ru": ["гривна"], "zh": ["格里夫纳"]},
    "zar": {"fr": ["rand sud-africain"], "es": ["rand sudafricano"], "nl": ["Zuid-Afrikaanse rand"], "ru": ["рэнд"]},
    "thb": {"fr": ["baht thaïlandais"], "es": ["bat"], "nl": ["Thaise baht"], "ru": ["бат"]},
    "krw": {"ru": ["вона"]},
    "vnd": {"en": ["Vietnamese dong"], "fr": ["dong"], "es": ["dong"], "nl": ["dong"], "ru": ["донг"]},
    "idr": {"zh": ["印尼盾"]},
}

# --------------------------------------------------------------------------
# Relations and templates
# --------------------------------------------------------------------------

# relation -> (label, lineid block base)
RELATIONS = {
    "P36": ("capital", 1000),
    "P1376": ("capital of", 2000),
    "P30": ("continent", 3000),
    "P37": ("official language", 4000),
    "P38": ("currency", 5000),
    "P17": ("country", 6000),
    "P47": ("shares border with", 7000),
}

TEMPLATES = {
    "P36": {
        "en": "The capital of [X] is [Y] .",
        "fr": "[X] a pour capitale [Y] .",
        "es": "La capital de [X] es [Y] .",
        "nl": "De hoofdstad van [X] is [Y] .",
        "ru": "Столица страны [X] — [Y] .",
        "zh": "[X]的首都是[Y]。",
    },
    "P1376": {
        "en": "[X] is the capital of [Y] .",
        "fr": "[Y] a pour capitale [X] .",
        "es": "[X] es la capital de [Y] .",
        "nl": "[X] is de hoofdstad van [Y] .",
        "ru": "[X] — столица страны [Y] .",
        "zh": "[X]是[Y]的首都。",
    },
    "P30": {
        "en": "[X] is located in [Y] .",
        "fr": "[X] se trouve en [Y] .",
        "es": "[X] se encuentra en [Y] .",
        "nl": "[X] ligt in [Y] .",
        "ru": "Страна [X] находится на континенте [Y] .",
        "zh": "[X]位于[Y]。",
    },
    "P37": {
        "en": "The official language of [X] is [Y] .",
        "fr": "[X] a pour langue officielle le [Y] .",
        "es": "El idioma oficial de [X] es el [Y] .",
        "nl": "De officiële taal van [X] is het [Y] .",
        "ru": "Официальный язык страны [X] — [Y] .",
        "zh": "[X]的官方语言是[Y]。",
    },
    "P38": {
        "en": "The official currency of [X] is the [Y] .",
        "fr": "[X] utilise une monnaie appelée [Y] .",
        "es": "La moneda oficial de [X] se llama [Y] .",
        "nl": "De munteenheid van [X] heet [Y] .",
        "ru": "Официальная валюта страны [X] — [Y] .",
        "zh": "[X]的官方货币是[Y]。",
    },
    "P17": {
        "en": "[X] is a city in [Y] .",
        "fr": "[Y] est le pays où se trouve [X] .",
        "es": "[X] es una ciudad de [Y] .",
        "nl": "[X] is een stad in [Y] .",
        "ru": "Город [X] находится в стране [Y] .",
        "zh": "[X]是[Y]的一座城市。",
    },
    "P47": {
        "en": "[X] shares a border with [Y] .",
        "fr": "[X] partage une frontière avec [Y] .",
        "es": "[X] limita con [Y] .",
        "nl": "[X] grenst aan [Y] .",
        "ru": "Страна [X] граничит со страной [Y] .",
        "zh": "[X]与[Y]接壤。",
    },
}

# --------------------------------------------------------------------------
# Facts: relation -> list of (subject key, object key).  Order is fixed: the
# n-th fact of relation R gets lineid base(R) + n and uuid "lrp2-R-000n", so
# new facts must be appended at the end of a list, never inserted.
# --------------------------------------------------------------------------

CAPITAL_OF = [
    ("france", "paris"),
    ("germany", "berlin"),
    ("spain", "madrid"),
    ("italy", "rome"),
    ("portugal", "lisbon"),
    ("netherlands", "amsterdam"),
    ("belgium", "brussels"),
    ("uk", "london"),
    ("ireland", "dublin"),
    ("poland", "warsaw"),
    ("russia", "moscow"),
    ("sweden", "stockholm"),
    ("norway", "oslo"),
    ("finland", "helsinki"),
    ("denmark", "copenhagen"),
    ("greece", "athens"),
    ("austria", "vienna"),
    ("hungary", "budapest"),
    ("czechia", "prague"),
    ("ukraine", "kyiv"),
    ("romania", "bucharest"),
    ("turkey", "ankara"),
    ("china", "beijing"),
    ("japan", "tokyo"),
    ("south_korea", "seoul"),
    ("india", "new_delhi"),
    ("thailand", "bangkok"),
    ("vietnam", "hanoi"),
    ("iran", "tehran"),
    ("egypt", "cairo"),
    ("morocco", "rabat"),
    ("nigeria", "abuja"),
    ("kenya", "nairobi"),
    ("ethiopia", "addis_ababa"),
    ("usa", "washington"),
    ("canada", "ottawa"),
    ("mexico", "mexico_city"),
    ("brazil", "brasilia"),
    ("argentina", "buenos_aires"),
    ("chile", "santiago"),
    ("peru", "lima"),
    ("colombia", "bogota"),
    ("australia", "canberra"),
    ("new_zealand", "wellington"),
    ("cuba", "havana"),
    ("venezuela", "caracas"),
    ("pakistan", "islamabad"),
    ("saudi_arabia", "riyadh"),
    ("philippines", "manila"),
    ("serbia", "belgrade"),
    ("croatia", "zagreb"),
    ("bulgaria", "sofia"),
    ("iceland", "reykjavik"),
    ("mongolia", "ulaanbaatar"),
    ("kazakhstan", "astana"),
]

# P36 uses the first 40 country/capital pairs; P1376 uses the last 15 pairs
# plus every other pair among the first 30, so all 55 capitals are covered.
_P36 = CAPITAL_OF[:40]
_P1376 = [(cap, country) for country, cap in CAPITAL_OF[40:55] + CAPITAL_OF[0:30:2]]

FACTS: dict[str, list[tuple[str, str]]] = {
    "P36": _P36,
    "P1376": _P1376,
    "P30": [
        ("france", "europe"),
        ("germany", "europe"),
        ("spain", "europe"),
        ("italy", "europe"),
        ("portugal", "europe"),
        ("netherlands", "europe"),
        ("poland", "europe"),
        ("sweden", "europe"),
        ("norway", "europe"),
        ("greece", "europe"),
        ("china", "asia"),
        ("japan", "asia"),
        ("south_korea", "asia"),
        ("india", "asia"),
        ("thailand", "asia"),
        ("vietnam", "asia"),
        ("iran", "asia"),
        ("pakistan", "asia"),
        ("mongolia", "asia"),
        ("saudi_arabia", "asia"),
        ("philippines", "asia"),
        ("nepal", "asia"),
        ("nigeria", "africa"),
        ("kenya", "africa"),
        ("ethiopia", "africa"),
        ("morocco", "africa"),
        ("south_africa", "africa"),
        ("ghana", "africa"),
        ("algeria", "africa"),
        ("angola", "africa"),
        ("usa", "north_america"),
        ("canada", "north_america"),
        ("mexico", "north_america"),
        ("brazil", "south_america"),
        ("argentina", "south_america"),
        ("chile", "south_america"),
        ("peru", "south_america"),
        ("colombia", "south_america"),
        ("venezuela", "south_america"),
        ("bolivia", "south_america"),
        ("australia", "oceania"),
        ("new_zealand", "oceania"),
        ("fiji", "oceania"),
        ("papua", "oceania"),
    ],
    "P37": [
        ("france", "lang_fr"),
        ("germany", "lang_de"),
        ("austria", "lang_de"),
        ("italy", "lang_it"),
        ("spain", "lang_es"),
        ("colombia", "lang_es"),
        ("cuba", "lang_es"),
        ("venezuela", "lang_es"),
        ("portugal", "lang_pt"),
        ("brazil", "lang_pt"),
        ("angola", "lang_pt"),
        ("mozambique", "lang_pt"),
        ("poland", "lang_pl"),
        ("russia", "lang_ru"),
        ("sweden", "lang_sv"),
        ("greece", "lang_el"),
        ("hungary", "lang_hu"),
        ("czechia", "lang_cs"),
        ("ukraine", "lang_uk"),
        ("romania", "lang_ro"),
        ("bulgaria", "lang_bg"),
        ("turkey", "lang_tr"),
        ("china", "lang_zh"),
        ("south_korea", "lang_ko"),
        ("netherlands", "lang_nl"),
        ("norway", "lang_no"),
        ("denmark", "lang_da"),
        ("iceland", "lang_is"),
        ("egypt", "lang_ar"),
        ("saudi_arabia", "lang_ar"),
        ("iran", "lang_fa"),
        ("vietnam", "lang_vi"),
        ("thailand", "lang_th"),
        ("indonesia", "lang_id"),
    ],
    "P38": [
        ("france", "eur"),
        ("germany", "eur"),
        ("italy", "eur"),
        ("spain", "eur"),
        ("netherlands", "eur"),
        ("japan", "jpy"),
        ("china", "cny"),
        ("uk", "gbp"),
        ("usa", "usd"),
        ("canada", "cad"),
        ("australia", "aud"),
        ("new_zealand", "nzd"),
        ("switzerland", "chf"),
        ("russia", "rub"),
        ("india", "inr"),
        ("sweden", "sek"),
        ("norway", "nok"),
        ("denmark", "dkk"),
        ("poland", "pln"),
        ("czechia", "czk"),
        ("hungary", "huf"),
        ("turkey", "try"),
        ("south_korea", "krw"),
        ("brazil", "brl"),
        ("mexico", "mxn"),
        ("argentina", "ars"),
        ("ukraine", "uah"),
        ("egypt", "egp"),
        ("south_africa", "zar"),
        ("thailand", "thb"),
        ("indonesia", "idr"),
        ("vietnam", "vnd"),
    ],
    "P17": [
        ("new_york", "usa"),
        ("los_angeles", "usa"),
        ("chicago", "usa"),
        ("san_francisco", "usa"),
        ("hamburg", "germany"),
        ("munich", "germany"),
        ("frankfurt", "germany"),
        ("cologne", "germany"),
        ("marseille", "france"),
        ("lyon", "france"),
        ("barcelona", "spain"),
        ("seville", "spain"),
        ("milan", "italy"),
        ("naples", "italy"),
        ("venice", "italy"),
        ("florence", "italy"),
        ("manchester", "uk"),
        ("liverpool", "uk"),
        ("rotterdam", "netherlands"),
        ("antwerp", "belgium"),
        ("porto", "portugal"),
        ("st_petersburg", "russia"),
        ("krakow", "poland"),
        ("istanbul", "turkey"),
        ("shanghai", "china"),
        ("shenzhen", "china"),
        ("osaka", "japan"),
        ("kyoto", "japan"),
        ("busan", "south_korea"),
        ("mumbai", "india"),
        ("ho_chi_minh", "vietnam"),
        ("sydney", "australia"),
        ("melbourne", "australia"),
        ("toronto", "canada"),
        ("montreal", "canada"),
        ("vancouver", "canada"),
        ("sao_paulo", "brazil"),
        ("rio", "brazil"),
        ("geneva", "switzerland"),
        ("zurich", "switzerland"),
        ("gothenburg", "sweden"),
        ("salzburg", "austria"),
        ("alexandria", "egypt"),
        ("casablanca", "morocco"),
        ("johannesburg", "south_africa"),
    ],
    "P47": [
        ("france", "spain"),
        ("germany", "poland"),
        ("spain", "portugal"),
        ("italy", "switzerland"),
        ("netherlands", "belgium"),
        ("belgium", "luxembourg"),
        ("austria", "hungary"),
        ("switzerland", "liechtenstein"),
        ("poland", "lithuania"),
        ("czechia", "slovakia"),
        ("hungary", "romania"),
        ("romania", "moldova"),
        ("ukraine", "belarus"),
        ("russia", "mongolia"),
        ("norway", "sweden"),
        ("sweden", "finland"),
        ("denmark", "germany"),
        ("greece", "bulgaria"),
        ("croatia", "slovenia"),
        ("turkey", "georgia"),
        ("china", "vietnam"),
        ("vietnam", "cambodia"),
        ("thailand", "malaysia"),
        ("india", "nepal"),
        ("pakistan", "afghanistan"),
        ("iran", "iraq"),
        ("saudi_arabia", "yemen"),
        ("egypt", "libya"),
        ("nigeria", "cameroon"),
        ("usa", "canada"),
        ("canada", "usa"),
        ("mexico", "guatemala"),
        ("brazil", "paraguay"),
        ("argentina", "chile"),
        ("chile", "bolivia"),
        ("colombia", "venezuela"),
        ("south_korea", "north_korea"),
        ("ireland", "uk"),
    ],
}

# Expected entity type of subjects / objects per relation (used by --check).
TYPES = {
    "P36": ("country", "capital"),
    "P1376": ("capital", "country"),
    "P30": ("country", "continent"),
    "P37": ("country", "language"),
    "P38": ("country", "currency"),
    "P17": ("city", "country"),
    "P47": ("country", "country"),
}

# --------------------------------------------------------------------------
# Construction
# --------------------------------------------------------------------------


def parse_table(text: str, etype: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for raw in text.strip().splitlines():
        cells = [c.strip() for c in raw.split("|")]
        if len(cells) != 2 + len(LANGS):
            raise ValueError(f"bad entity row ({len(cells)} cells): {raw!r}")
        key, uri, *names = cells
        if key in out:
            raise ValueError(f"duplicate entity key {key!r}")
        out[key] = {"key": key, "uri": uri, "type": etype, "names": dict(zip(LANGS, names))}
    return out


def load_entities() -> dict[str, dict]:
    entities: dict[str, dict] = {}
    for text, etype in (
        (COUNTRIES, "country"),
        (CAPITALS, "capital"),
        (CITIES, "city"),
        (CONTINENTS, "continent"),
        (LANGUAGES, "language"),
        (CURRENCIES, "currency"),
    ):
        for key, ent in parse_table(text, etype).items():
            if key in entities:
                raise ValueError(f"entity key {key!r} defined twice")
            entities[key] = ent
    for key, per_lang in ALIASES.items():
        if key not in entities:
            raise ValueError(f"aliases for unknown entity {key!r}")
        for lang in per_lang:
            if lang not in LANGS:
                raise ValueError(f"aliases for unknown language {lang!r} ({key})")
    return entities


def aliases_of(key: str, lang: str, label: str) -> list[str]:
    seen: list[str] = []
    for a in ALIASES.get(key, {}).get(lang, []):
        if a != label and a not in seen:
            seen.append(a)
    return seen


def build_records() -> tuple[dict[str, list[dict]], dict[str, dict[str, list[dict]]]]:
    """Return (templates[lang] -> rows, facts[lang][relation] -> rows)."""
    entities = load_entities()
    templates = {
        lang: [
            {"relation": rel, "template": TEMPLATES[rel][lang], "label": RELATIONS[rel][0]} for rel in sorted(RELATIONS)
        ]
        for lang in LANGS
    }
    facts: dict[str, dict[str, list[dict]]] = {lang: {} for lang in LANGS}
    for rel in sorted(RELATIONS):
        base = RELATIONS[rel][1]
        for lang in LANGS:
            rows = []
            for n, (s, o) in enumerate(FACTS[rel], start=1):
                sub, obj = entities[s], entities[o]
                sl, ol = sub["names"][lang], obj["names"][lang]
                rows.append(
                    {
                        "lineid": base + n,
                        "uuid": f"lrp2-{rel}-{n:04d}",
                        "sub_uri": sub["uri"],
                        "obj_uri": obj["uri"],
                        "sub_label": sl,
                        "obj_label": ol,
                        "sub_aliases": aliases_of(s, lang, sl),
                        "obj_aliases": aliases_of(o, lang, ol),
                    }
                )
            facts[lang][rel] = sorted(rows, key=lambda r: r["lineid"])
    return templates, facts


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(dumps(row) + "\n")


def stats_table() -> str:
    lines = [
        "| relation | label | subject → object | facts | distinct objects |",
        "|---|---|---|---:|---:|",
    ]
    total = 0
    for rel in sorted(RELATIONS, key=lambda r: RELATIONS[r][1]):
        n = len(FACTS[rel])
        objs = len({o for _, o in FACTS[rel]})
        st, ot = TYPES[rel]
        lines.append(f"| {rel} | {RELATIONS[rel][0]} | {st} → {ot} | {n} | {objs} |")
        total += n
    lines.append(f"| **total** | | | **{total}** | |")
    return "\n".join(lines)


BEGIN, END = "<!-- stats:begin -->", "<!-- stats:end -->"


def readme_with_stats(text: str) -> str:
    i, j = text.find(BEGIN), text.find(END)
    if i < 0 or j < i:
        raise ValueError(f"{README} lacks the {BEGIN} ... {END} markers")
    return text[: i + len(BEGIN)] + "\n" + stats_table() + "\n" + text[j:]


def build() -> None:
    templates, facts = build_records()
    for lang in LANGS:
        d = FACTS_DIR / lang
        d.mkdir(parents=True, exist_ok=True)
        wanted = {"templates.jsonl"} | {f"{rel}.jsonl" for rel in RELATIONS}
        for stale in sorted(d.glob("*.jsonl")):
            if stale.name not in wanted:
                stale.unlink()
        write_jsonl(d / "templates.jsonl", templates[lang])
        for rel, rows in facts[lang].items():
            write_jsonl(d / f"{rel}.jsonl", rows)
    if README.exists():
        text = README.read_text(encoding="utf-8")
        new = readme_with_stats(text)
        if new != text:
            README.write_text(new, encoding="utf-8")
    total = sum(len(v) for v in FACTS.values())
    print(f"wrote {len(LANGS)} languages x {len(RELATIONS)} relations, {total} facts per language to {FACTS_DIR}")


# --------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------


def check() -> list[str]:
    errors: list[str] = []
    err = errors.append
    entities = load_entities()

    # entity table: non-empty names, one id per entity, one entity per id,
    # distinct labels per language (so typed candidate sets are unambiguous)
    by_uri: dict[str, str] = {}
    for key, ent in entities.items():
        if not ent["uri"] or not (ent["uri"][0] in "QE" and ent["uri"][1:].isdigit()):
            err(f"entity {key}: bad id {ent['uri']!r}")
        if ent["uri"] in by_uri:
            err(f"id {ent['uri']} used by {by_uri[ent['uri']]} and {key}")
        by_uri[ent["uri"]] = key
        for lang in LANGS:
            name = ent["names"][lang]
            if not name.strip() or name != name.strip() or "  " in name:
                err(f"entity {key}: bad {lang} label {name!r}")
    for lang in LANGS:
        seen: dict[str, str] = {}
        for key, ent in entities.items():
            name = ent["names"][lang]
            if name in seen:
                err(f"{lang}: label {name!r} shared by {seen[name]} and {key}")
            seen[name] = key

    # relation tables
    if set(FACTS) != set(RELATIONS) or set(TEMPLATES) != set(RELATIONS) or set(TYPES) != set(RELATIONS):
        err("RELATIONS, TEMPLATES, TYPES and FACTS cover different relations")
    bases = [b for _, b in RELATIONS.values()]
    if len(set(bases)) != len(bases):
        err("two relations share a lineid block")
    if len(RELATIONS) < 7:
        err(f"only {len(RELATIONS)} relations")
    for rel, pairs in FACTS.items():
        if len(pairs) >= 1000:
            err(f"{rel}: too many facts for its lineid block")
        if len(pairs) < MIN_FACTS_PER_RELATION:
            err(f"{rel}: only {len(pairs)} facts")
        if len(set(pairs)) != len(pairs):
            err(f"{rel}: duplicate facts")
        subs = [s for s, _ in pairs]
        if len(set(subs)) != len(subs):
            err(f"{rel}: a subject occurs twice: {[s for s, c in Counter(subs).items() if c > 1]}")
        if len({o for _, o in pairs}) < MIN_OBJECTS_PER_RELATION:
            err(f"{rel}: fewer than {MIN_OBJECTS_PER_RELATION} distinct objects")
        st, ot = TYPES[rel]
        for s, o in pairs:
            for k, t in ((s, st), (o, ot)):
                if k not in entities:
                    err(f"{rel}: unknown entity {k!r}")
                elif entities[k]["type"] != t:
                    err(f"{rel}: {k} is a {entities[k]['type']}, expected {t}")
            if s == o:
                err(f"{rel}: {s} relates to itself")
    for rel, per_lang in TEMPLATES.items():
        if set(per_lang) != set(LANGS):
            err(f"{rel}: templates for {sorted(per_lang)}, expected {list(LANGS)}")
    # P36 and P1376 must agree with each other
    cap = dict(CAPITAL_OF)
    for s, o in FACTS["P1376"]:
        if cap.get(o) != s:
            err(f"P1376 ({s}, {o}) is not in CAPITAL_OF")
    used = {k for pairs in FACTS.values() for pair in pairs for k in pair}
    for key in entities:
        if key not in used:
            err(f"entity {key} is defined but used by no fact")

    # files on disk: exactly what build() would write
    templates, facts = build_records()
    langs_on_disk = sorted(p.name for p in FACTS_DIR.iterdir() if p.is_dir()) if FACTS_DIR.is_dir() else []
    if langs_on_disk != sorted(LANGS):
        err(f"language folders on disk {langs_on_disk}, expected {sorted(LANGS)}")
    keysets = {}
    lineid_owner: dict[int, str] = {}
    for lang in LANGS:
        d = FACTS_DIR / lang
        names = sorted(p.name for p in d.glob("*")) if d.is_dir() else []
        expected = sorted(["templates.jsonl"] + [f"{rel}.jsonl" for rel in RELATIONS])
        if names != expected:
            err(f"{lang}: files {names}, expected {expected}")
            continue
        rows = [json.loads(l) for l in (d / "templates.jsonl").read_text(encoding="utf-8").splitlines()]
        if rows != templates[lang]:
            err(f"{lang}/templates.jsonl is stale: run python data/build_facts.py")
        for row in rows:
            t = row["template"]
            if t.count("[X]") != 1 or t.count("[Y]") != 1:
                err(f"{lang}/{row['relation']}: template needs exactly one [X] and one [Y]: {t!r}")
        keys = set()
        n_lang = 0
        for rel in sorted(RELATIONS):
            path = d / f"{rel}.jsonl"
            text = path.read_text(encoding="utf-8")
            expected_text = "".join(dumps(r) + "\n" for r in facts[lang][rel])
            if text != expected_text:
                err(f"{lang}/{rel}.jsonl is stale: run python data/build_facts.py")
            file_rows = [json.loads(l) for l in text.splitlines()]
            ids = [r["lineid"] for r in file_rows]
            if ids != sorted(ids):
                err(f"{lang}/{rel}.jsonl: not sorted by lineid")
            labels_by_uri: dict[str, str] = {}
            for r in file_rows:
                for fld in ("sub_label", "obj_label", "sub_uri", "obj_uri", "uuid"):
                    if not isinstance(r.get(fld), str) or not r[fld].strip():
                        err(f"{lang}/{rel} lineid {r.get('lineid')}: empty {fld}")
                if not isinstance(r.get("lineid"), int):
                    err(f"{lang}/{rel}: non-integer lineid {r.get('lineid')!r}")
                owner = f"{rel}:{r['uuid']}"
                if lineid_owner.setdefault(r["lineid"], owner) != owner:
                    err(f"lineid {r['lineid']} used by {lineid_owner[r['lineid']]} and {owner}")
                if labels_by_uri.setdefault(r["obj_uri"], r["obj_label"]) != r["obj_label"]:
                    err(f"{lang}/{rel}: object {r['obj_uri']} has two labels")
                keys.add((rel, r["lineid"], r["uuid"], r["sub_uri"], r["obj_uri"]))
            objs = set(labels_by_uri.values())
            if len(objs) != len(labels_by_uri):
                err(f"{lang}/{rel}: two objects share a label")
            n_lang += len(file_rows)
        if n_lang < MIN_FACTS_PER_LANG:
            err(f"{lang}: only {n_lang} facts")
        keysets[lang] = keys
    ref = keysets.get(LANGS[0])
    for lang, keys in keysets.items():
        if keys != ref:
            err(f"{lang}: (relation, lineid, uuid, sub_uri, obj_uri) differ from {LANGS[0]}")

    # README table
    if README.exists():
        text = README.read_text(encoding="utf-8")
        try:
            if readme_with_stats(text) != text:
                err("data/README.md statistics table is stale: run python data/build_facts.py")
        except ValueError as e:
            err(str(e))
    else:
        err("data/README.md is missing")
    return errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="validate tables and files instead of writing them")
    args = ap.parse_args(argv)
    if args.check:
        errors = check()
        for e in errors:
            print("ERROR:", e, file=sys.stderr)
        if errors:
            return 1
        total = sum(len(v) for v in FACTS.values())
        print(f"ok: {len(LANGS)} languages, {len(RELATIONS)} relations, {total} facts per language")
        print(stats_table())
        return 0
    build()
    return 0


if __name__ == "__main__":
    sys.exit(main())
