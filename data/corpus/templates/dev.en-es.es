La Habana es la capital de Cuba .
Belgrado es la capital de Serbia .
Astaná es la capital de Kazajistán .
Dublín es la capital de Irlanda .
Praga es la capital de República Checa .
Teherán es la capital de Irán .
Hamburgo es una ciudad de Alemania .
Lyon es una ciudad de Francia .
Venecia es una ciudad de Italia .
Amberes es una ciudad de Bélgica .
Shanghái es una ciudad de China .
Bombay es una ciudad de India .
Montreal es una ciudad de Canadá .
Zúrich es una ciudad de Suiza .
Johannesburgo es una ciudad de Sudáfrica .
Portugal se encuentra en Europa .
Grecia se encuentra en Europa .
Tailandia se encuentra en Asia .
Arabia Saudita se encuentra en Asia .
Etiopía se encuentra en África .
Angola se encuentra en África .
Argentina se encuentra en América del Sur .
Bolivia se encuentra en América del Sur .
La capital de Portugal es Lisboa .
La capital de Polonia es Varsovia .
La capital de Dinamarca es Copenhague .
La capital de Ucrania es Kiev .
La capital de Corea del Sur es Seúl .
La capital de Egipto es El Cairo .
La capital de Estados Unidos es Washington D. C. .
La capital de Chile es Santiago de Chile .
El idioma oficial de España es el español .
El idioma oficial de Brasil es el portugués .
El idioma oficial de Suecia es el sueco .
El idioma oficial de Rumania es el rumano .
El idioma oficial de Países Bajos es el neerlandés .
El idioma oficial de Arabia Saudita es el árabe .
La moneda oficial de Países Bajos se llama euro .
La moneda oficial de Canadá se llama dólar canadiense .
La moneda oficial de India se llama rupia india .
La moneda oficial de República Checa se llama corona checa .
La moneda oficial de México se llama peso mexicano .
La moneda oficial de Tailandia se llama baht .
Países Bajos limita con Bélgica .
República Checa limita con Eslovaquia .
Noruega limita con Suecia .
Turquía limita con Georgia .
Pakistán limita con Afganistán .
Estados Unidos limita con Canadá .
Chile limita con Bolivia .
