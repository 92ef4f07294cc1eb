import { hello } from "#common";
console.log(hello("x"));
