// The 404 page: the shared header; the text is in the HTML (data-i18n).
import { chrome } from "./ui.js";

chrome();
