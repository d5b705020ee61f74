import { mount } from "svelte";
import App from "./App.svelte";
import "./app.css";
import { app } from "./lib/store.svelte";

void app.start();
mount(App, { target: document.getElementById("app") as HTMLElement });
