Lima es la capital de Perú .
Bogotá es la capital de Colombia .
Canberra es la capital de Australia .
Wellington es la capital de Nueva Zelanda .
Caracas es la capital de Venezuela .
Islamabad es la capital de Pakistán .
Riad es la capital de Arabia Saudita .
Manila es la capital de Filipinas .
Zagreb es la capital de Croacia .
Sofía es la capital de Bulgaria .
Reikiavik es la capital de Islandia .
Ulán Bator es la capital de Mongolia .
París es la capital de Francia .
Madrid es la capital de España .
Lisboa es la capital de Portugal .
Bruselas es la capital de Bélgica .
Moscú es la capital de Rusia .
Oslo es la capital de Noruega .
Copenhague es la capital de Dinamarca .
Viena es la capital de Austria .
Bucarest es la capital de Rumania .
Pekín es la capital de China .
Seúl es la capital de Corea del Sur .
Bangkok es la capital de Tailandia .
Nueva York es una ciudad de Estados Unidos .
Los Ángeles es una ciudad de Estados Unidos .
Chicago es una ciudad de Estados Unidos .
San Francisco es una ciudad de Estados Unidos .
Múnich es una ciudad de Alemania .
Fráncfort es una ciudad de Alemania .
Colonia es una ciudad de Alemania .
Marsella es una ciudad de Francia .
Barcelona es una ciudad de España .
Sevilla es una ciudad de España .
Milán es una ciudad de Italia .
Nápoles es una ciudad de Italia .
Florencia es una ciudad de Italia .
Mánchester es una ciudad de Reino Unido .
Liverpool es una ciudad de Reino Unido .
Róterdam es una ciudad de Países Bajos .
Oporto es una ciudad de Portugal .
San Petersburgo es una ciudad de Rusia .
Cracovia es una ciudad de Polonia .
Estambul es una ciudad de Turquía .
Shenzhen es una ciudad de China .
Osaka es una ciudad de Japón .
Kioto es una ciudad de Japón .
Busan es una ciudad de Corea del Sur .
Ciudad Ho Chi Minh es una ciudad de Vietnam .
Sídney es una ciudad de Australia .
Melbourne es una ciudad de Australia .
Toronto es una ciudad de Canadá .
Vancouver es una ciudad de Canadá .
São Paulo es una ciudad de Brasil .
Río de Janeiro es una ciudad de Brasil .
Ginebra es una ciudad de Suiza .
Gotemburgo es una ciudad de Suecia .
Salzburgo es una ciudad de Austria .
Alejandría es una ciudad de Egipto .
Casablanca es una ciudad de Marruecos .
Francia se encuentra en Europa .
Alemania se encuentra en Europa .
España se encuentra en Europa .
Italia se encuentra en Europa .
Países Bajos se encuentra en Europa .
Polonia se encuentra en Europa .
Suecia se encuentra en Europa .
Noruega se encuentra en Europa .
China se encuentra en Asia .
Japón se encuentra en Asia .
Corea del Sur se encuentra en Asia .
India se encuentra en Asia .
Vietnam se encuentra en Asia .
Irán se encuentra en Asia .
Pakistán se encuentra en Asia .
Mongolia se encuentra en Asia .
Filipinas se encuentra en Asia .
Nepal se encuentra en Asia .
Nigeria se encuentra en África .
Kenia se encuentra en África .
Marruecos se encuentra en África .
Sudáfrica se encuentra en África .
Ghana se encuentra en África .
Argelia se encuentra en África .
Estados Unidos se encuentra en América del Norte .
Canadá se encuentra en América del Norte .
México se encuentra en América del Norte .
Brasil se encuentra en América del Sur .
Chile se encuentra en América del Sur .
Perú se encuentra en América del Sur .
Colombia se encuentra en América del Sur .
Venezuela se encuentra en América del Sur .
Australia se encuentra en Oceanía .
Nueva Zelanda se encuentra en Oceanía .
Fiyi se encuentra en Oceanía .
Papúa Nueva Guinea se encuentra en Oceanía .
La capital de Francia es París .
La capital de Alemania es Berlín .
La capital de España es Madrid .
La capital de Italia es Roma .
La capital de Países Bajos es Ámsterdam .
La capital de Bélgica es Bruselas .
La capital de Reino Unido es Londres .
La capital de Irlanda es Dublín .
La capital de Rusia es Moscú .
La capital de Suecia es Estocolmo .
La capital de Noruega es Oslo .
La capital de Finlandia es Helsinki .
La capital de Grecia es Atenas .
La capital de Austria es Viena .
La capital de Hungría es Budapest .
La capital de República Checa es Praga .
La capital de Rumania es Bucarest .
La capital de Turquía es Ankara .
La capital de China es Pekín .
La capital de Japón es Tokio .
La capital de India es Nueva Delhi .
La capital de Tailandia es Bangkok .
La capital de Vietnam es Hanói .
La capital de Irán es Teherán .
La capital de Marruecos es Rabat .
La capital de Nigeria es Abuja .
La capital de Kenia es Nairobi .
La capital de Etiopía es Adís Abeba .
La capital de Canadá es Ottawa .
La capital de México es Ciudad de México .
La capital de Brasil es Brasilia .
La capital de Argentina es Buenos Aires .
El idioma oficial de Francia es el francés .
El idioma oficial de Alemania es el alemán .
El idioma oficial de Austria es el alemán .
El idioma oficial de Italia es el italiano .
El idioma oficial de Colombia es el español .
El idioma oficial de Cuba es el español .
El idioma oficial de Venezuela es el español .
El idioma oficial de Portugal es el portugués .
El idioma oficial de Angola es el portugués .
El idioma oficial de Mozambique es el portugués .
El idioma oficial de Polonia es el polaco .
El idioma oficial de Rusia es el ruso .
El idioma oficial de Grecia es el griego .
El idioma oficial de Hungría es el húngaro .
El idioma oficial de República Checa es el checo .
El idioma oficial de Ucrania es el ucraniano .
El idioma oficial de Bulgaria es el búlgaro .
El idioma oficial de Turquía es el turco .
El idioma oficial de China es el chino .
El idioma oficial de Corea del Sur es el coreano .
El idioma oficial de Noruega es el noruego .
El idioma oficial de Dinamarca es el danés .
El idioma oficial de Islandia es el islandés .
El idioma oficial de Egipto es el árabe .
El idioma oficial de Irán es el persa .
El idioma oficial de Vietnam es el vietnamita .
El idioma oficial de Tailandia es el tailandés .
El idioma oficial de Indonesia es el indonesio .
La moneda oficial de Francia se llama euro .
La moneda oficial de Alemania se llama euro .
La moneda oficial de Italia se llama euro .
La moneda oficial de España se llama euro .
La moneda oficial de Japón se llama yen .
La moneda oficial de China se llama yuan .
La moneda oficial de Reino Unido se llama libra esterlina .
La moneda oficial de Estados Unidos se llama dólar estadounidense .
La moneda oficial de Australia se llama dólar australiano .
La moneda oficial de Nueva Zelanda se llama dólar neozelandés .
La moneda oficial de Suiza se llama franco suizo .
La moneda oficial de Rusia se llama rublo ruso .
La moneda oficial de Suecia se llama corona sueca .
La moneda oficial de Noruega se llama corona noruega .
La moneda oficial de Dinamarca se llama corona danesa .
La moneda oficial de Polonia se llama zloty .
La moneda oficial de Hungría se llama forinto .
La moneda oficial de Turquía se llama lira turca .
La moneda oficial de Corea del Sur se llama won surcoreano .
La moneda oficial de Brasil se llama real brasileño .
La moneda oficial de Argentina se llama peso argentino .
La moneda oficial de Ucrania se llama grivna .
La moneda oficial de Egipto se llama libra egipcia .
La moneda oficial de Sudáfrica se llama rand .
La moneda oficial de Indonesia se llama rupia indonesia .
La moneda oficial de Vietnam se llama dong vietnamita .
Francia limita con España .
Alemania limita con Polonia .
España limita con Portugal .
Italia limita con Suiza .
Bélgica limita con Luxemburgo .
Austria limita con Hungría .
Suiza limita con Liechtenstein .
Polonia limita con Lituania .
Hungría limita con Rumania .
Rumania limita con Moldavia .
Ucrania limita con Bielorrusia .
Rusia limita con Mongolia .
Suecia limita con Finlandia .
Dinamarca limita con Alemania .
Grecia limita con Bulgaria .
Croacia limita con Eslovenia .
China limita con Vietnam .
Vietnam limita con Camboya .
Tailandia limita con Malasia .
India limita con Nepal .
Irán limita con Irak .
Arabia Saudita limita con Yemen .
Egipto limita con Libia .
Nigeria limita con Camerún .
Canadá limita con Estados Unidos .
México limita con Guatemala .
Brasil limita con Paraguay .
Argentina limita con Chile .
Colombia limita con Venezuela .
Corea del Sur limita con Corea del Norte .
Irlanda limita con Reino Unido .
